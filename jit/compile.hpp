// Kernel definition -> code: PTX text for a GPU target, or a host function (the CPU backend).
// libropejit links the LLVM generator (compile.cpp); libropejit_runtime links compile_none.cpp,
// which explains that it cannot generate code.
#pragma once

#include <string>

#include "codegen/targets.hpp"
#include "jit/kernel_def.hpp"

namespace ropejit::jit {

// Full code generation: IR -> O3 -> PTX. Counted in stats().
std::string generate_ptx(const KernelDef& def, const codegen::PtxTarget& target);
// IR -> O3 -> host code through ORC. Counted in stats().
codegen::HostGridFn generate_host(const KernelDef& def);

}  // namespace ropejit::jit
