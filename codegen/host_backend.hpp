// The same kernel IR compiled for this CPU with LLVM ORC, run over the whole grid. It lets every
// generated kernel be checked on a machine with no GPU.
#pragma once

#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

#include <cstdint>
#include <memory>
#include <string>

#include "codegen/targets.hpp"

namespace ropejit::codegen {


// Prepares an empty module for the host (triple and data layout).
void configure_host_module(llvm::Module& module);

// Optimises the module at O3 for the host, JIT-compiles it and returns `symbol` from it.
// Modules stay loaded for the life of the process; symbols must be unique.
HostGridFn compile_host(std::unique_ptr<llvm::LLVMContext> ctx, std::unique_ptr<llvm::Module> module,
                        const std::string& symbol);

}  // namespace ropejit::codegen
