// For checking kernels: fp64 references (host memory); with device.hpp (device memory, GPU timing).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ropejit/device.hpp"
#include "ropejit/qk_norm_rope.hpp"
#include "ropejit/rope.hpp"

namespace ropejit {

// cos/sin as doubles, [max_position, rotary_dim / 2]; or, made from frequencies, computed for each
// position when asked (angle p x inv_freq and its cos and sin in long double, times the factor).
struct ReferenceTable {
  int64_t max_position = 0, rotary_dim = 0;
  std::vector<double> cos, sin;
  std::vector<double> inv_freq;  // set: angles computed per position, for in-kernel (exact) angles
  double attention_factor = 1.0;
  AngleMode mode = AngleMode::exact;  // with inv_freq: exact angles, or HF's f32 angles (hf_compat)
  // What in-kernel angles must match: exact angles of these frequencies (or hf_compat's).
  static ReferenceTable from_frequencies(const std::vector<double>& inv_freq, double attention_factor,
                                         int64_t max_position = int64_t(1) << 32, AngleMode mode = AngleMode::exact);
  // Angles and cos/sin in fp64, never rounded to a table dtype.
  static ReferenceTable exact(int64_t max_position, int64_t rotary_dim, double theta);
  // The values a table holds (host memory), widened to fp64: what a kernel reading it should use.
  static ReferenceTable from(const CosSinTable& host_table);
};

// Expected output of one tensor, dense [batch, seq, heads, head_dim].
struct ReferenceResult {
  std::vector<double> value;
  // Per element, the scale of the fp32 arithmetic's error: |x1 cos| + |x2 sin| for a rotated
  // element, |x| for a normalised one passed through; 0 where the element is copied unchanged (it
  // must then be bit-exact).
  std::vector<double> scale;
  // Relative error allowed per unit of scale, besides the output's rounding: 2^-22 for RoPE's
  // rotation; the norm's bound (head_dim / 2 + 8) * 2^-24 added for QK-norm + RoPE.
  double relative = 0x1p-22;
};
// `inverse`: rotated by -angle (RopeOptions::inverse, RoPE's backward).
ReferenceResult reference_rope(const TensorView& x, const Positions& positions, const ReferenceTable& table,
                               RopeStyle style, int64_t rotary_dim, bool inverse = false);
// The same for any layout the op takes: options' style, rotary_dim and rotary_offset, inverse, mrope
// sections, and q_out's dtype (only its dtype is read).
ReferenceResult reference_rope(const TensorView& x, const Positions& positions, const ReferenceTable& table,
                               const RopeOptions& options);
// RMS norm in fp64 (weight `w`, host memory, [head_dim] of weight_dtype), then the rotation in fp64.
ReferenceResult reference_qk_norm_rope(const TensorView& x, const void* weight, const QkNorm& norm,
                                       const Positions& positions, const ReferenceTable& table, RopeStyle style,
                                       int64_t rotary_dim);
ReferenceResult reference_qk_norm_rope(const TensorView& x, const void* weight, const QkNorm& norm,
                                       const Positions& positions, const ReferenceTable& table,
                                       const RopeOptions& options);

// Compares a kernel's output view (host memory) with the reference. Tolerance per element:
// ref.relative * scale for the fp32 arithmetic, plus half an ulp of the output dtype (f16/bf16 rounding).
struct Comparison {
  int64_t checked = 0, mismatches = 0;
  double max_error_in_tolerances = 0;  // worst |out - ref| / tolerance (<= 1 passes)
  std::string first_mismatch;           // "[b,s,h,d]: got .. expected .." when any
  bool ok() const { return mismatches == 0 && checked > 0; }
};
Comparison compare_to_reference(const TensorView& out, const ReferenceResult& ref);

}  // namespace ropejit
