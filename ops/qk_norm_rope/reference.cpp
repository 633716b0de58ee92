// The fp64 reference of QK-norm + RoPE: each head RMS-normalised in fp64, then rotated in fp64.
#include <fmt/format.h>

#include <cmath>

#include "ropejit/testing.hpp"

namespace ropejit {

ReferenceResult reference_qk_norm_rope(const TensorView& x, const void* weight, const QkNorm& norm,
                                       const Positions& positions, const ReferenceTable& table, RopeStyle style,
                                       int64_t rotary_dim) {
  if (rotary_dim != table.rotary_dim) throw Error("reference: table rotary_dim differs");
  const int64_t D = x.head_dim, R = rotary_dim, P = R / 2;
  ReferenceResult r;
  // The kernel's fp32 error, per unit of scale: the sum of D squares (D - 1 roundings), the mean, the
  // square root and the division, the two products, (1 + w), then the rotation's own 2^-22.
  r.relative = double(D / 2 + 8) * 0x1p-24 + 0x1p-22;
  const size_t n = size_t(x.batch * x.seq * x.heads * D);
  r.value.resize(n);
  r.scale.resize(n);
  std::vector<double> w(static_cast<size_t>(D)), row(static_cast<size_t>(D));
  for (int64_t d = 0; d < D; ++d) w[size_t(d)] = load_as_double(norm.weight_dtype, weight, d) + (norm.one_plus_weight ? 1.0 : 0.0);
  size_t o = 0;
  for (int64_t b = 0; b < x.batch; ++b)
    for (int64_t s = 0; s < x.seq; ++s) {
      int64_t pos = positions.ids ? int64_t(load_as_double(positions.ids_dtype, positions.ids, b * x.seq + s))
                                  : positions.offset + s;
      if (pos < 0 || pos >= table.max_position)
        throw Error(fmt::format("reference: position {} of token ({}, {}) is outside the table", pos, b, s));
      const double* c = &table.cos[size_t(pos * P)];
      const double* sn = &table.sin[size_t(pos * P)];
      for (int64_t h = 0; h < x.heads; ++h) {
        int64_t base = b * x.stride_batch + s * x.stride_seq + h * x.stride_head;
        double sum = 0;
        for (int64_t d = 0; d < D; ++d) {
          double v = load_as_double(x.dtype, x.data, base + d);
          row[size_t(d)] = v;
          sum += v * v;
        }
        const double scale = 1.0 / std::sqrt(sum / double(D) + double(float(norm.eps)));
        for (int64_t d = 0; d < D; ++d) row[size_t(d)] *= scale * w[size_t(d)];
        for (int64_t d = 0; d < D; ++d, ++o) {
          if (d >= R) {
            r.value[o] = row[size_t(d)];
            r.scale[o] = std::fabs(row[size_t(d)]);
            continue;
          }
          int64_t i = style == RopeStyle::neox ? d % P : d / 2;
          bool first = style == RopeStyle::neox ? d < P : d % 2 == 0;
          double x1 = style == RopeStyle::neox ? row[size_t(i)] : row[size_t(2 * i)];
          double x2 = style == RopeStyle::neox ? row[size_t(i + P)] : row[size_t(2 * i + 1)];
          r.value[o] = first ? x1 * c[i] - x2 * sn[i] : x2 * c[i] + x1 * sn[i];
          r.scale[o] = first ? std::fabs(x1 * c[i]) + std::fabs(x2 * sn[i]) : std::fabs(x2 * c[i]) + std::fabs(x1 * sn[i]);
        }
      }
    }
  return r;
}

}  // namespace ropejit
