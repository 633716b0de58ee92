// Fused per-head QK-RMSNorm + RoPE (Qwen3, OLMo-2, Gemma-3 style attention): each head of q and k is
// RMS-normalised over head_dim with its own weight, then rotated, in one pass over memory.
#pragma once

#include <string>
#include <vector>

#include "ropejit/rope.hpp"

namespace ropejit {

struct QkNorm {
  const void* q_weight = nullptr;  // [head_dim], contiguous, in the backend's memory
  const void* k_weight = nullptr;  // [head_dim]; needed when k is given
  DType weight_dtype = DType::f32;  // f32, or the dtype of q and k
  double eps = 1e-6;               // inside the square root: x / sqrt(mean(x^2) + eps)
  bool one_plus_weight = false;    // scale by (1 + w), as Gemma stores its norm weights
};

// y = rope(x / sqrt(mean(x^2) + eps) * w) for every head of q (and k): the norm covers the whole head,
// the rotation covers options.rotary_dim; fp32 accumulation, rounded once on store. Everything RoPE
// takes works here too (styles, dtypes, positions, layouts, out of place). Throws Error, writing
// nothing, on bad input.
void apply_qk_norm_rope(const TensorView& q, const TensorView* k, const Positions& positions,
                        const AngleSource& angles, const QkNorm& norm, const RopeOptions& options,
                        void* stream = nullptr);

// apply_qk_norm_rope's kernel made ready without running it, as warm_up for RoPE (rope.hpp).
void warm_up(const TensorView& q, const TensorView* k, const Positions& positions, const AngleSource& angles,
             const QkNorm& norm, const RopeOptions& options);

// The fused op's prepared call (see PreparedCall in rope.hpp); the norm's weights are fixed by it.
PreparedCall prepare_qk_norm_rope(const TensorView& q, const TensorView* k, const Positions& positions,
                                  const AngleSource& angles, const QkNorm& norm, const RopeOptions& options);

// The fused op's specialisation: RoPE's spec plus the weights' form.
struct QkNormRopeSpec {
  RopeSpec rope;
  DType weight_dtype = DType::f32;
  bool one_plus_weight = false;
  void validate() const;
  std::string key() const;
  bool operator==(const QkNormRopeSpec&) const = default;
};

KernelChoice describe_qk_norm_rope(const TensorView& q, const TensorView* k, const Positions& positions,
                                   const AngleSource& angles, const QkNorm& norm, const RopeOptions& options);

// The fused op's kernels made ahead of time (see aot.hpp).
std::vector<PrecompiledKernel> precompile(const QkNormRopeSpec& spec, const std::vector<int>& sms);

}  // namespace ropejit
