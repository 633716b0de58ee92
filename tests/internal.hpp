// Test access to the layers below the public API: RoPE's kernel definitions through the generic
// pipeline (PTX, symbols, cache keys).
#pragma once

#include "jit/compile.hpp"
#include "jit/kernel_def.hpp"
#include "ops/qk_norm_rope/op.hpp"
#include "ops/rope/op.hpp"

namespace ropejit::test {

inline std::string rope_ptx(const RopeSpec& s, const KernelConfig& c, codegen::PtxTarget t) {
  return jit::generate_ptx(rope::rope_kernel_def(s, c), t);
}
inline std::string rope_symbol(const RopeSpec& s, const KernelConfig& c) { return rope::rope_kernel_def(s, c).symbol(); }
inline std::string rope_ptx_key(const RopeSpec& s, const KernelConfig& c, codegen::PtxTarget t) {
  return jit::ptx_key(rope::rope_kernel_def(s, c), t);
}

}  // namespace ropejit::test
