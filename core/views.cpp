#include "core/views.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>

namespace ropejit {

namespace {
// The product of a contiguous layout's extents, or an Error where it overflows (or one is negative).
int64_t checked_product(std::initializer_list<int64_t> xs) {
  int64_t p = 1;
  for (int64_t x : xs)
    if (x < 0 || __builtin_mul_overflow(p, x, &p))
      throw Error(fmt::format("TensorView: a negative size, or a size whose product overflows 64 bits"));
  return p;
}
}  // namespace

TensorView TensorView::bshd(void* data, DType dtype, int64_t b, int64_t s, int64_t h, int64_t d) {
  checked_product({b, s, h, d});
  return TensorView{data, dtype, b, s, h, d, s * h * d, h * d, d};
}
TensorView TensorView::sbhd(void* data, DType dtype, int64_t b, int64_t s, int64_t h, int64_t d) {
  checked_product({b, s, h, d});
  return TensorView{data, dtype, b, s, h, d, h * d, b * h * d, d};
}
TensorView TensorView::bhsd(void* data, DType dtype, int64_t b, int64_t s, int64_t h, int64_t d) {
  checked_product({b, s, h, d});
  return TensorView{data, dtype, b, s, h, d, h * s * d, d, s * d};
}

namespace core {

namespace {
bool empty(const TensorView& v) { return v.batch == 0 || v.seq == 0; }

// Strides of dimensions of size 1 are never used (as frameworks treat them): 0 here.
TensorView normalized(TensorView v) {
  if (v.batch == 1) v.stride_batch = 0;
  if (v.seq == 1) v.stride_seq = 0;
  if (v.heads == 1) v.stride_head = 0;
  return v;
}

// Element span [0, span) of one token row: its heads and their elements.
int64_t row_span(const TensorView& v) { return (v.heads - 1) * v.stride_head + v.head_dim; }

// Byte range [lo, hi) a view touches.
std::pair<uintptr_t, uintptr_t> extent(const TensorView& v) {
  auto lo = reinterpret_cast<uintptr_t>(v.data);
  int64_t last = (v.batch - 1) * v.stride_batch + (v.seq - 1) * v.stride_seq + row_span(v);
  return {lo, lo + uintptr_t(last) * uintptr_t(dtype_size(v.dtype))};
}

// floor and ceil of a / b for b > 0.
int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && (a < 0)); }
int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }
}  // namespace

void check_view(const char* name, const TensorView& v) {
  if (!v.data) throw Error(fmt::format("{}: null data pointer", name));
  if (!is_float(v.dtype))
    throw Error(fmt::format("{}: dtype {} is not supported: use f32, f16 or bf16", name, dtype_name(v.dtype)));
  // batch or seq 0: an empty call (a serving step with no tokens), valid and a no-op.
  if (v.batch < 0 || v.seq < 0 || v.heads <= 0 || v.head_dim <= 0)
    throw Error(fmt::format("{}: shape [{}, {}, {}, {}] has a negative dimension, or no heads or head_dim", name,
                            v.batch, v.seq, v.heads, v.head_dim));
  const TensorView n = normalized(v);
  if ((v.batch > 1 && n.stride_batch <= 0) || (v.seq > 1 && n.stride_seq <= 0) || (v.heads > 1 && n.stride_head <= 0))
    throw Error(fmt::format("{}: strides ({}, {}, {}) must be positive (where the dimension is larger than 1)", name,
                            v.stride_batch, v.stride_seq, v.stride_head));
  const int64_t limit = int64_t(1) << 46;  // element indices stay far from overflowing 64-bit byte offsets
  if (v.batch > limit || v.seq > limit || v.heads > limit || v.head_dim > limit || n.stride_batch > limit ||
      n.stride_seq > limit || n.stride_head > limit)
    throw Error(fmt::format("{}: a dimension or stride is beyond 2^46", name));
  if (reinterpret_cast<uintptr_t>(v.data) % uintptr_t(dtype_size(v.dtype)))
    throw Error(fmt::format("{}: data pointer {} is not aligned to its {}-byte elements", name, v.data, dtype_size(v.dtype)));
  // No element reached twice: sorted by stride, each dimension steps past everything inside it.
  struct Dim {
    const char* what;
    int64_t extent, stride;
  };
  if (empty(v)) return;
  std::array<Dim, 3> dims = {Dim{"head", v.heads, n.stride_head}, Dim{"seq", v.seq, n.stride_seq},
                             Dim{"batch", v.batch, n.stride_batch}};
  // Three elements: an insertion sort, stable, with no allocation (std::stable_sort may allocate).
  for (size_t i = 1; i < dims.size(); ++i)
    for (size_t j = i; j > 0 && dims[j].stride < dims[j - 1].stride; --j) std::swap(dims[j], dims[j - 1]);
  int64_t span = v.head_dim;
  const char* inside = "head_dim";
  for (const Dim& d : dims) {
    if (d.extent == 1) continue;
    if (d.stride < span)
      throw Error(fmt::format("{}: {} stride {} is smaller than the {} elements the {} inside it span: two {} "
                              "indices would reach the same elements",
                              name, d.what, d.stride, span, inside, d.what));
    int64_t reach = 0;
    if (__builtin_mul_overflow(d.extent - 1, d.stride, &reach) || __builtin_add_overflow(reach, span, &span))
      throw Error(fmt::format("{}: the {} dimension reaches past 2^63 elements", name, d.what));
    inside = d.what;
  }
  // The last byte must be an address: no wrap past 2^64 (the kernels add byte offsets to the pointer).
  uint64_t bytes = 0, end = 0;
  if (__builtin_mul_overflow(uint64_t(span), uint64_t(dtype_size(v.dtype)), &bytes) ||
      __builtin_add_overflow(uint64_t(reinterpret_cast<uintptr_t>(v.data)), bytes, &end))
    throw Error(fmt::format("{}: the view's {} elements from {} run past the end of the address space", name, span, v.data));
}

void check_same_shape(const char* name, const TensorView& v, const char* ref_name, const TensorView& ref, bool heads,
                      bool same_dtype) {
  if (same_dtype && v.dtype != ref.dtype)
    throw Error(fmt::format("{}: dtype {} differs from {}'s {}", name, dtype_name(v.dtype), ref_name, dtype_name(ref.dtype)));
  if (v.batch != ref.batch || v.seq != ref.seq || v.head_dim != ref.head_dim || (heads && v.heads != ref.heads))
    throw Error(fmt::format("{}: shape [{}, {}, {}, {}] does not match {}'s [{}, {}, {}, {}]", name, v.batch, v.seq,
                            v.heads, v.head_dim, ref_name, ref.batch, ref.seq, ref.heads, ref.head_dim));
}

bool may_overlap(const TensorView& a0, const TensorView& b0) {
  if (empty(a0) || empty(b0)) return false;
  const TensorView a = normalized(a0), b = normalized(b0);
  auto [alo, ahi] = extent(a);
  auto [blo, bhi] = extent(b);
  if (!(alo < bhi && blo < ahi)) return false;
  const int64_t es = dtype_size(a.dtype);
  const int64_t delta_bytes = int64_t(blo) - int64_t(alo);
  if (a.dtype != b.dtype || a.batch != b.batch || a.seq != b.seq || a.stride_batch != b.stride_batch ||
      a.stride_seq != b.stride_seq || delta_bytes % es)
    return true;  // different token layouts: the byte extents decide
  // Token rows at offsets t = i*sb + j*ss; a's row occupies [t, t + span_a), b's [t + delta, ...).
  // They meet iff some difference t2 - t1 = di*sb + dj*ss (|di| < batch, |dj| < seq) lies in
  // (-span_b - delta, span_a - delta).
  const int64_t delta = delta_bytes / es;
  const int64_t lo = -row_span(b) - delta + 1, hi = row_span(a) - delta - 1;  // inclusive
  // Walk the dimension with fewer steps; solve for the other.
  bool batch_outer = a.batch <= a.seq;
  const int64_t n_out = batch_outer ? a.batch : a.seq, s_out = batch_outer ? a.stride_batch : a.stride_seq;
  const int64_t n_in = batch_outer ? a.seq : a.batch, s_in = batch_outer ? a.stride_seq : a.stride_batch;
  for (int64_t i = -(n_out - 1); i <= n_out - 1; ++i) {
    const int64_t base = i * s_out;
    if (n_in == 1) {  // one step only (its stride is 0)
      if (lo <= base && base <= hi) return true;
      continue;
    }
    const int64_t j_lo = std::max(-(n_in - 1), ceil_div(lo - base, s_in));
    const int64_t j_hi = std::min(n_in - 1, floor_div(hi - base, s_in));
    if (j_lo <= j_hi) return true;
  }
  return false;
}

void check_disjoint(const char* a_name, const TensorView& a, const char* b_name, const TensorView& b) {
  if (may_overlap(a, b))
    throw Error(fmt::format("{} and {} share elements: each tensor the op reads or writes must have elements of its "
                            "own (views into one buffer are fine when their elements are disjoint)",
                            a_name, b_name));
}

int view_width(const TensorView& v0) {
  const TensorView v = normalized(v0);
  int esize = dtype_size(v.dtype);
  int w = 16 / esize;
  auto ok = [&](int w) {
    uint64_t bytes = uint64_t(w) * uint64_t(esize);
    return reinterpret_cast<uintptr_t>(v.data) % bytes == 0 && v.stride_batch % w == 0 && v.stride_seq % w == 0 &&
           v.stride_head % w == 0;
  };
  while (w > 1 && !ok(w)) w /= 2;
  return w;
}

}  // namespace core
}  // namespace ropejit
