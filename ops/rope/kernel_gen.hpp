// The RoPE kernel, written against codegen's KernelBuilder: one program per token.
//
// Thread t owns chunk c = t % C of W rotary pairs and head group g = t / C; it loads the token's
// cos/sin for its chunk once and walks heads g, g+G, ... of q, then of k, reusing them. NeoX reads
// x[cW..] and x[P+cW..]; GPT-J reads the 2W interleaved elements at x[2cW..]. No shared memory and no
// barriers, so the same IR runs on the host backend.
#pragma once

#include <llvm/IR/Module.h>

#include <string>

#include "codegen/kernel_builder.hpp"
#include "ops/rope/spec.hpp"

namespace ropejit::rope {

// Builds the kernel into `module` and returns the symbol to look up (the grid entry on the host).
std::string generate_rope_kernel(llvm::Module& module, codegen::Target target, const RopeSpec& spec,
                                 const LaunchConfig& config, const std::string& name);

}  // namespace ropejit::rope
