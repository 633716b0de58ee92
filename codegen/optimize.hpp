// LLVM's new pass manager at O3, the same pipeline for both backends.
#pragma once

#include <llvm/IR/Module.h>
#include <llvm/Target/TargetMachine.h>

namespace ropejit::codegen {
void optimize_module(llvm::Module& module, llvm::TargetMachine& tm);
}
