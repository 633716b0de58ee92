// The body of every rotating kernel, in the kernel language: RoPE, and with `norm` the fused per-head
// RMSNorm + RoPE. (Built into libropejit only.)
#pragma once

#include <optional>

#include "ops/rope/spec.hpp"
#include "ropejit/language.hpp"

namespace ropejit::rope {

// Per-head RMSNorm before the rotation: its parameters are q_weight, k_weight (pointers of
// `weight_dtype`) and eps (f32), after the rotation parameters.
struct NormParams {
  DType weight_dtype = DType::f32;
  bool one_plus_weight = false;
};

void emit_rotating_kernel(lang::Builder& b, const RopeSpec& spec, const LaunchConfig& config,
                          const std::optional<NormParams>& norm);

}  // namespace ropejit::rope
