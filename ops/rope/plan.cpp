#include "ops/rope/plan.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <cstdint>

namespace ropejit::rope {

namespace {

bool is_float(DType t) { return t == DType::f32 || t == DType::f16 || t == DType::bf16; }

void check_view(const char* name, const TensorView& v) {
  if (!v.data) throw Error(fmt::format("{}: null data pointer", name));
  if (!is_float(v.dtype)) throw Error(fmt::format("{}: dtype {} is not supported: use f32, f16 or bf16", name, dtype_name(v.dtype)));
  if (v.batch <= 0 || v.seq <= 0 || v.heads <= 0 || v.head_dim <= 0)
    throw Error(fmt::format("{}: shape [{}, {}, {}, {}] has an empty or negative dimension", name, v.batch, v.seq,
                            v.heads, v.head_dim));
  if (v.stride_batch <= 0 || v.stride_seq <= 0 || v.stride_head <= 0)
    throw Error(fmt::format("{}: strides ({}, {}, {}) must be positive", name, v.stride_batch, v.stride_seq, v.stride_head));
  if (v.heads > 1 && v.stride_head < v.head_dim)
    throw Error(fmt::format("{}: head stride {} is smaller than head_dim {}: heads would overlap", name, v.stride_head, v.head_dim));
  if (reinterpret_cast<uintptr_t>(v.data) % uintptr_t(dtype_size(v.dtype)))
    throw Error(fmt::format("{}: data pointer {} is not aligned to its {}-byte elements", name, v.data, dtype_size(v.dtype)));
}

void check_same_shape(const char* name, const TensorView& v, const char* ref_name, const TensorView& ref, bool heads) {
  if (v.dtype != ref.dtype)
    throw Error(fmt::format("{}: dtype {} differs from {}'s {}", name, dtype_name(v.dtype), ref_name, dtype_name(ref.dtype)));
  if (v.batch != ref.batch || v.seq != ref.seq || v.head_dim != ref.head_dim || (heads && v.heads != ref.heads))
    throw Error(fmt::format("{}: shape [{}, {}, {}, {}] does not match {}'s [{}, {}, {}, {}]", name, v.batch, v.seq,
                            v.heads, v.head_dim, ref_name, ref.batch, ref.seq, ref.heads, ref.head_dim));
}

// Byte range [lo, hi) a view touches.
std::pair<uintptr_t, uintptr_t> extent(const TensorView& v) {
  auto lo = reinterpret_cast<uintptr_t>(v.data);
  int64_t last = (v.batch - 1) * v.stride_batch + (v.seq - 1) * v.stride_seq + (v.heads - 1) * v.stride_head + v.head_dim;
  return {lo, lo + uintptr_t(last) * uintptr_t(dtype_size(v.dtype))};
}

void check_disjoint(const char* a_name, const TensorView& a, const char* b_name, const TensorView& b) {
  auto [alo, ahi] = extent(a);
  auto [blo, bhi] = extent(b);
  if (alo < bhi && blo < ahi)
    throw Error(fmt::format("{} overlaps {}: out-of-place outputs must not share memory with the inputs", a_name, b_name));
}

// Widest vector width (elements, power of two, at most 16 bytes) a view's pointer and strides allow.
int view_width(const TensorView& v) {
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

Strides strides_of(const TensorView& v) { return Strides{v.stride_batch, v.stride_seq, v.stride_head}; }

}  // namespace

Plan make_plan(const TensorView& q, const TensorView* k, const Positions& positions, const CosSinTable& table,
               const RopeOptions& options) {
  Plan plan;
  RopeSpec& spec = plan.spec;
  check_view("q", q);
  if (k) {
    check_view("k", *k);
    check_same_shape("k", *k, "q", q, false);
  }
  const bool out_of_place = options.q_out.has_value() || options.k_out.has_value();
  if (out_of_place) {
    if (!options.q_out) throw Error("q_out: missing; out of place needs q_out (and k_out when k is given)");
    check_view("q_out", *options.q_out);
    check_same_shape("q_out", *options.q_out, "q", q, true);
    check_disjoint("q_out", *options.q_out, "q", q);
    if (k) {
      if (!options.k_out) throw Error("k_out: missing; out of place with k needs k_out");
      check_view("k_out", *options.k_out);
      check_same_shape("k_out", *options.k_out, "k", *k, true);
      check_disjoint("k_out", *options.k_out, "k", *k);
      check_disjoint("k_out", *options.k_out, "q", q);
      check_disjoint("q_out", *options.q_out, "k", *k);
      check_disjoint("q_out", *options.q_out, "k_out", *options.k_out);
    } else if (options.k_out) {
      throw Error("k_out: given without k");
    }
  }
  if (k) check_disjoint("k", *k, "q", q);

  if (q.head_dim > 512 || q.head_dim % 2)
    throw Error(fmt::format("q: head_dim {} is not supported: it must be even and at most 512", q.head_dim));
  int64_t rotary = options.rotary_dim ? options.rotary_dim : q.head_dim;
  if (rotary <= 0 || rotary % 2)
    throw Error(fmt::format("rotary_dim {} is not supported: it must be even and positive", rotary));
  if (rotary > q.head_dim) throw Error(fmt::format("rotary_dim {} is larger than head_dim {}", rotary, q.head_dim));
  if (q.heads > 4096 || (k && k->heads > 4096)) throw Error("q/k: more than 4096 heads is not supported");

  const int64_t tokens = q.batch * q.seq;
  if (tokens > INT32_MAX) throw Error(fmt::format("q: {} tokens exceed the grid's limit of {}", tokens, INT32_MAX));

  // Table
  if (!table.cos || !table.sin) throw Error("table: null cos or sin pointer");
  if (table.dtype != DType::f32 && table.dtype != DType::bf16)
    throw Error(fmt::format("table: dtype {} is not supported: use f32 or bf16", dtype_name(table.dtype)));
  if (table.rotary_dim != rotary)
    throw Error(fmt::format("table: built for rotary_dim {}, but rotary_dim is {}", table.rotary_dim, rotary));
  if (table.max_position <= 0) throw Error("table: max_position must be positive");

  // Positions
  if (positions.ids) {
    if (positions.ids_dtype != DType::i32 && positions.ids_dtype != DType::i64)
      throw Error(fmt::format("positions: ids dtype {} is not supported: use i32 or i64", dtype_name(positions.ids_dtype)));
    if (reinterpret_cast<uintptr_t>(positions.ids) % uintptr_t(dtype_size(positions.ids_dtype)))
      throw Error("positions: ids pointer is not aligned to its elements");
    if (options.backend == Backend::host) {  // host memory: every id can be checked before running
      for (int64_t i = 0; i < tokens; ++i) {
        double p = load_as_double(positions.ids_dtype, positions.ids, i);
        if (p < 0 || p >= double(table.max_position))
          throw Error(fmt::format("positions: id {} at token {} is outside the table's [0, {})", int64_t(p), i,
                                  table.max_position));
      }
    }
  } else if (positions.offset < 0 || positions.offset + q.seq > table.max_position) {
    throw Error(fmt::format("positions: offset {} + seq {} runs past the table's max_position {}", positions.offset,
                            q.seq, table.max_position));
  }

  spec.head_dim = int(q.head_dim);
  spec.rotary_dim = int(rotary);
  spec.style = options.style;
  spec.dtype = q.dtype;
  spec.table_dtype = table.dtype;
  spec.q_heads = int(q.heads);
  spec.k_heads = k ? int(k->heads) : 0;
  spec.in_place = !out_of_place;
  spec.positions = !positions.ids ? PositionKind::offset
                   : positions.ids_dtype == DType::i32 ? PositionKind::ids_i32
                                                       : PositionKind::ids_i64;
  spec.validate();

  // Vector width the memory allows: every q/k pointer and stride, and the table rows.
  int w = view_width(q);
  if (k) w = std::min(w, view_width(*k));
  if (options.q_out) w = std::min(w, view_width(*options.q_out));
  if (options.k_out) w = std::min(w, view_width(*options.k_out));
  auto tab_ok = [&](int w) {
    uintptr_t align = uintptr_t(std::min(16, w * dtype_size(table.dtype)));
    return reinterpret_cast<uintptr_t>(table.cos) % align == 0 && reinterpret_cast<uintptr_t>(table.sin) % align == 0;
  };
  while (w > 1 && !tab_ok(w)) w /= 2;
  if (!tab_ok(1)) throw Error("table: cos/sin pointers are not aligned to their elements");
  plan.width_cap = w;

  KernelArgs& a = plan.args;
  a.q_in = q.data;
  a.q_out = options.q_out ? options.q_out->data : q.data;
  a.k_in = k ? k->data : nullptr;
  a.k_out = options.k_out ? options.k_out->data : a.k_in;
  a.cos = table.cos;
  a.sin = table.sin;
  a.position_ids = positions.ids;
  a.position_offset = positions.ids ? 0 : positions.offset;
  a.seq_len = q.seq;
  a.max_position = table.max_position;
  a.q_in_strides = strides_of(q);
  a.q_out_strides = options.q_out ? strides_of(*options.q_out) : a.q_in_strides;
  if (k) {
    a.k_in_strides = strides_of(*k);
    a.k_out_strides = options.k_out ? strides_of(*options.k_out) : a.k_in_strides;
  }
  plan.tokens = tokens;
  return plan;
}

}  // namespace ropejit::rope
