// RoPE's kernel body: the rotating kernel without a norm. Registered where the generator is linked.
#include "ops/rope/op.hpp"
#include "ops/rope/rotating_kernel.hpp"

namespace ropejit::rope {

namespace {
jit::Body make_rope_body(const RopeSpec& spec, const LaunchConfig& config) {
  return [spec, config](lang::Builder& b) { emit_rotating_kernel(b, spec, config, std::nullopt); };
}
const bool registered = (rope_body = &make_rope_body, true);
}  // namespace

}  // namespace ropejit::rope
