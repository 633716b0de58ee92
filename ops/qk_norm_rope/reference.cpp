// The fp64 reference of QK-norm + RoPE: each head RMS-normalised in fp64, then rotated in fp64.
#include <fmt/format.h>

#include <cmath>

#include "ops/rope/reference_rotation.hpp"
#include "ropejit/testing.hpp"

namespace ropejit {

ReferenceResult reference_qk_norm_rope(const TensorView& x, const void* weight, const QkNorm& norm,
                                       const Positions& positions, const ReferenceTable& table, RopeStyle style,
                                       int64_t rotary_dim) {
  RopeOptions layout;
  layout.style = style;
  layout.rotary_dim = rotary_dim;
  return reference_qk_norm_rope(x, weight, norm, positions, table, layout);
}

ReferenceResult reference_qk_norm_rope(const TensorView& x, const void* weight, const QkNorm& norm,
                                       const Positions& positions, const ReferenceTable& table,
                                       const RopeOptions& options) {
  const int64_t D = x.head_dim;
  std::vector<double> w(static_cast<size_t>(D));
  for (int64_t d = 0; d < D; ++d)
    w[size_t(d)] = load_as_double(norm.weight_dtype, weight, d) + (norm.one_plus_weight ? 1.0 : 0.0);
  const double eps = double(float(norm.eps));  // the kernel's eps is an f32
  auto r = rope::reference_rotation(x, positions, table, options, [&](std::vector<double>& row) {
    double sum = 0;
    for (double v : row) sum += v * v;
    const double scale = 1.0 / std::sqrt(sum / double(D) + eps);
    for (size_t d = 0; d < row.size(); ++d) row[d] *= scale * w[d];
  });
  // The kernel's fp32 error, per unit of scale: the sum of D squares (D - 1 roundings), the mean, the
  // square root and the division, the two products, (1 + w), then the rotation's own 2^-22.
  r.relative = double(D / 2 + 8) * 0x1p-24 + 0x1p-22;
  return r;
}

}  // namespace ropejit
