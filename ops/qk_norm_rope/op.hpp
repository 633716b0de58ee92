// Fused per-head QK-RMSNorm + RoPE on the generic core: RoPE's plan plus the weights, the rotating
// kernel with its norm, the same config rules with lanes padded for the norm's reduction.
#pragma once

#include "jit/kernel_def.hpp"
#include "ops/rope/config_choice.hpp"
#include "ops/rope/plan.hpp"
#include "ropejit/qk_norm_rope.hpp"

namespace ropejit::qk_norm_rope {

using rope::LaunchConfig;

// The body generator, set by ops/qk_norm_rope/kernel.cpp where the code generator is linked.
extern jit::Body (*body)(const QkNormRopeSpec& spec, const LaunchConfig& config);

jit::KernelDef kernel_def(const QkNormRopeSpec& spec, const LaunchConfig& config);
rope::ConfigRules rules(const QkNormRopeSpec& spec);

}  // namespace ropejit::qk_norm_rope
