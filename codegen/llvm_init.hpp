// One-time LLVM target registration for the NVPTX and host backends.
#pragma once

namespace ropejit::codegen {
void ensure_llvm_initialized();
}
