// LLVM IR -> PTX through LLVM's NVPTX backend.
#pragma once

#include <llvm/IR/Module.h>

#include <string>

#include "codegen/targets.hpp"

namespace ropejit::codegen {

// Optimises `module` at O3 for the target and returns its PTX text; `record`: its phases in stats().
std::string emit_ptx(llvm::Module& module, const PtxTarget& target, bool record = true);

// Prepares an empty module for `target` (triple and data layout), before kernels are built into it.
void configure_nvptx_module(llvm::Module& module, const PtxTarget& target);

}  // namespace ropejit::codegen
