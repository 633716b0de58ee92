// QK-norm + RoPE's kernel body: the rotating kernel with its per-head norm. Registered where the
// generator is linked.
#include "ops/qk_norm_rope/op.hpp"
#include "ops/rope/rotating_kernel.hpp"

namespace ropejit::qk_norm_rope {

namespace {
jit::Body make_body(const QkNormRopeSpec& spec, const LaunchConfig& config) {
  return [spec, config](lang::Builder& b) {
    rope::emit_rotating_kernel(b, spec.rope, config, rope::NormParams{spec.weight_dtype, spec.one_plus_weight});
  };
}
const bool registered = (body = &make_body, true);
}  // namespace

}  // namespace ropejit::qk_norm_rope
