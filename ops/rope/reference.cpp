// The fp64 reference: the definition every kernel is checked against.
#include <fmt/format.h>

#include <cmath>

#include "core/views.hpp"
#include "ops/rope/reference_rotation.hpp"
#include "ropejit/rope.hpp"
#include "ropejit/testing.hpp"

namespace ropejit {

ReferenceTable ReferenceTable::exact(int64_t max_position, int64_t rotary_dim, double theta) {
  if (max_position <= 0 || rotary_dim <= 0 || rotary_dim % 2 || max_position > (int64_t(1) << 36) / rotary_dim)
    throw Error(fmt::format("reference table: max_position {} and rotary_dim {} are out of range", max_position, rotary_dim));
  ReferenceTable t;
  t.max_position = max_position;
  t.rotary_dim = rotary_dim;
  const int64_t half = rotary_dim / 2;
  t.cos.resize(size_t(max_position * half));
  t.sin.resize(size_t(max_position * half));
  for (int64_t p = 0; p < max_position; ++p)
    for (int64_t i = 0; i < half; ++i) {
      double angle = double(p) * std::pow(theta, -2.0 * double(i) / double(rotary_dim));
      t.cos[size_t(p * half + i)] = std::cos(angle);
      t.sin[size_t(p * half + i)] = std::sin(angle);
    }
  return t;
}

ReferenceTable ReferenceTable::from_frequencies(const std::vector<double>& inv_freq, double attention_factor,
                                                int64_t max_position, AngleMode mode) {
  if (inv_freq.empty() || max_position <= 0)
    throw Error("reference table: no frequencies, or max_position not positive");
  ReferenceTable t;
  t.max_position = max_position;
  t.rotary_dim = int64_t(inv_freq.size()) * 2;
  t.inv_freq = inv_freq;
  t.attention_factor = attention_factor;
  t.mode = mode;
  return t;
}

ReferenceTable ReferenceTable::from(const CosSinTable& host) {
  if (!host.cos || !host.sin) throw Error("reference table: null cos or sin pointer");
  if (host.max_position <= 0 || host.rotary_dim <= 0 || host.rotary_dim % 2 ||
      host.max_position > (int64_t(1) << 36) / host.rotary_dim)
    throw Error(fmt::format("reference table: max_position {} and rotary_dim {} are out of range", host.max_position,
                            host.rotary_dim));
  ReferenceTable t;
  t.max_position = host.max_position;
  t.rotary_dim = host.rotary_dim;
  const int64_t n = host.max_position * (host.rotary_dim / 2);
  t.cos.resize(size_t(n));
  t.sin.resize(size_t(n));
  for (int64_t i = 0; i < n; ++i) {
    t.cos[size_t(i)] = load_as_double(host.dtype, host.cos, i);
    t.sin[size_t(i)] = load_as_double(host.dtype, host.sin, i);
  }
  return t;
}

namespace rope {

ReferenceResult reference_rotation(const TensorView& x, const Positions& positions, const ReferenceTable& table,
                                   const RopeOptions& layout,
                                   const std::function<void(std::vector<double>& row)>& prepare) {
  const RopeStyle style = layout.style;
  const int64_t off = layout.rotary_offset;
  const int64_t rotary_dim = layout.rotary_dim ? layout.rotary_dim : x.head_dim - off;
  if (rotary_dim != table.rotary_dim) throw Error("reference: table rotary_dim differs");
  if (off < 0 || rotary_dim <= 0 || rotary_dim % 2 || rotary_dim > x.head_dim - off)
    throw Error(fmt::format("reference: rotary_dim {} from offset {} must be even, positive and fit head_dim {}",
                            rotary_dim, off, x.head_dim));
  core::check_view("reference input", x);  // sizes and strides overflow-checked before any indexing
  const bool per_position = !table.inv_freq.empty();
  if (per_position ? table.inv_freq.size() != size_t(rotary_dim / 2)
                   : table.cos.size() != size_t(table.max_position * (rotary_dim / 2)) || table.sin.size() != table.cos.size())
    throw Error("reference: the table's cos/sin (or frequencies) do not match max_position and rotary_dim");
  const auto& sec = layout.mrope_section;
  const bool multimodal = sec[0] || sec[1] || sec[2];
  if (multimodal != (positions.components == 3) || (multimodal && sec[0] + sec[1] + sec[2] != rotary_dim / 2))
    throw Error("reference: mrope_section and three ids per token go together, the sections adding up to rotary_dim / 2");
  // Which of the token's positions (t, h, w) pair i takes.
  auto component = [&](int64_t i) -> int {
    if (!multimodal) return 0;
    if (layout.mrope_interleaved) return i % 3 == 1 && i < 3 * sec[1] ? 1 : i % 3 == 2 && i < 3 * sec[2] ? 2 : 0;
    return i < sec[0] ? 0 : i < sec[0] + sec[1] ? 1 : 2;
  };
  // An output that cannot hold every input value (anything but f32, from another dtype: f16 <-> bf16
  // too) rounds the part passed through (within half an ulp); otherwise it is bit-exact.
  const bool narrows = layout.q_out && layout.q_out->dtype != x.dtype && layout.q_out->dtype != DType::f32;
  std::vector<double> cos_row(size_t(rotary_dim / 2)), sin_row(size_t(rotary_dim / 2));
  const double sin_sign = layout.inverse ? -1.0 : 1.0;
  const int64_t D = x.head_dim, R = rotary_dim, P = R / 2;
  ReferenceResult r;
  const size_t n = size_t(x.batch * x.seq * x.heads * D);
  r.value.resize(n);
  r.scale.resize(n);
  std::vector<double> row(static_cast<size_t>(D));
  const int64_t tokens = x.batch * x.seq;
  size_t o = 0;
  for (int64_t b = 0; b < x.batch; ++b)
    for (int64_t s = 0; s < x.seq; ++s) {
      int64_t pos[3] = {0, 0, 0};
      for (int c = 0; c < positions.components; ++c)
        pos[c] = positions.ids ? int64_t(load_as_double(positions.ids_dtype, positions.ids, c * tokens + b * x.seq + s))
                               : positions.offset + s;
      if (positions.cu_seqlens) {  // varlen: the sequence holding token s, by a plain scan
        auto at = [&](const void* a, int64_t i) { return int64_t(load_as_double(positions.ids_dtype, a, i)); };
        int64_t i = 0;
        while (i + 1 <= positions.num_seqs && at(positions.cu_seqlens, i + 1) <= s) ++i;
        if (i >= positions.num_seqs) throw Error(fmt::format("reference: token {} is past the last sequence", s));
        pos[0] = (positions.starts ? at(positions.starts, i) : positions.offset) + (s - at(positions.cu_seqlens, i));
      }
      for (int c = 0; c < positions.components; ++c)
        if (pos[c] < 0 || pos[c] >= table.max_position)
          throw Error(fmt::format("reference: position {} of token ({}, {}) is outside the table", pos[c], b, s));
      for (int64_t i = 0; i < P; ++i) {
        const int64_t p = pos[component(i)];
        if (!per_position) {
          cos_row[size_t(i)] = table.cos[size_t(p * P + i)];
          sin_row[size_t(i)] = table.sin[size_t(p * P + i)];
          continue;
        }
        // exact: p x inv_freq in long double; hf_compat: HF's f32 angle, then its exact sin and cos.
        const long double angle =
            table.mode == AngleMode::hf_compat
                ? (long double)(float(p) * float(table.inv_freq[size_t(i)]))
                : (long double)p * (long double)table.inv_freq[size_t(i)];
        cos_row[size_t(i)] = double(std::cos(angle) * table.attention_factor);
        sin_row[size_t(i)] = double(std::sin(angle) * table.attention_factor);
      }
      const double* c = cos_row.data();
      const double* sn = sin_row.data();
      for (int64_t h = 0; h < x.heads; ++h) {
        int64_t base = b * x.stride_batch + s * x.stride_seq + h * x.stride_head;
        for (int64_t d = 0; d < D; ++d) row[size_t(d)] = load_as_double(x.dtype, x.data, base + d);
        if (prepare) prepare(row);
        for (int64_t d = 0; d < D; ++d, ++o) {
          const int64_t e = d - off;  // index within the rotary part
          if (e < 0 || e >= R) {  // passed through: bit-exact (scale 0) unless `prepare` computed it
            r.value[o] = row[size_t(d)];
            r.scale[o] = prepare || narrows ? std::fabs(row[size_t(d)]) : 0;
            continue;
          }
          const double* rot = row.data() + off;
          int64_t i = style == RopeStyle::neox ? e % P : e / 2;
          bool first = style == RopeStyle::neox ? e < P : e % 2 == 0;
          double x1 = style == RopeStyle::neox ? rot[i] : rot[2 * i];
          double x2 = style == RopeStyle::neox ? rot[i + P] : rot[2 * i + 1];
          const double si = sin_sign * sn[i];
          r.value[o] = first ? x1 * c[i] - x2 * si : x2 * c[i] + x1 * si;
          r.scale[o] = first ? std::fabs(x1 * c[i]) + std::fabs(x2 * si) : std::fabs(x2 * c[i]) + std::fabs(x1 * si);
          // In-kernel cos and sin are within 1.2e-7 (sincos_turns) of exact, before the factor: half
          // of the 2^-22 per unit of scale covers that for each of the pair's two products.
          if (per_position) r.scale[o] += 0.5 * table.attention_factor * (std::fabs(x1) + std::fabs(x2));
        }
      }
    }
  return r;
}

}  // namespace rope

ReferenceResult reference_rope(const TensorView& x, const Positions& positions, const ReferenceTable& table,
                               RopeStyle style, int64_t rotary_dim, bool inverse) {
  RopeOptions layout;
  layout.style = style;
  layout.rotary_dim = rotary_dim;
  layout.inverse = inverse;
  return rope::reference_rotation(x, positions, table, layout, nullptr);
}

ReferenceResult reference_rope(const TensorView& x, const Positions& positions, const ReferenceTable& table,
                               const RopeOptions& options) {
  return rope::reference_rotation(x, positions, table, options, nullptr);
}

namespace {
// Half an ulp of `t` at magnitude v (subnormals included).
double half_ulp(DType t, double v) {
  int mant = t == DType::bf16 ? 7 : t == DType::f16 ? 10 : 23;
  int min_exp = t == DType::f16 ? -14 : -126;
  int e = v > 0 ? std::ilogb(v) : min_exp;
  if (e < min_exp) e = min_exp;
  return std::ldexp(1.0, e - mant - 1);
}
}  // namespace

Comparison compare_to_reference(const TensorView& out, const ReferenceResult& ref) {
  Comparison c;
  core::check_view("compare_to_reference output", out);
  const size_t n = size_t(out.batch * out.seq * out.heads * out.head_dim);
  if (ref.value.size() != n || ref.scale.size() != n)
    throw Error(fmt::format("compare_to_reference: the reference has {} values, the view {} elements", ref.value.size(), n));
  const int64_t D = out.head_dim;
  size_t o = 0;
  for (int64_t b = 0; b < out.batch; ++b)
    for (int64_t s = 0; s < out.seq; ++s)
      for (int64_t h = 0; h < out.heads; ++h)
        for (int64_t d = 0; d < D; ++d, ++o) {
          double got = load_as_double(out.dtype, out.data, b * out.stride_batch + s * out.stride_seq + h * out.stride_head + d);
          double want = ref.value[o];
          double tol = ref.scale[o] == 0 ? 0 : ref.relative * ref.scale[o] + half_ulp(out.dtype, std::max(std::fabs(want), std::fabs(got)));
          double err = std::fabs(got - want);
          ++c.checked;
          const bool same = (std::isnan(got) && std::isnan(want)) || got == want;  // equal infinities too
          bool bad = !same && !(err <= tol);  // NaN against a number fails
          if (!bad && tol > 0) c.max_error_in_tolerances = std::max(c.max_error_in_tolerances, err / tol);
          if (bad) {
            if (c.mismatches++ == 0)
              c.first_mismatch = fmt::format("[{},{},{},{}]: got {:.9g}, expected {:.9g} (tolerance {:.3g})", b, s, h, d,
                                             got, want, tol);
          }
        }
  return c;
}

}  // namespace ropejit
