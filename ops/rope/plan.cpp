#include "ops/rope/plan.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>

#include "core/views.hpp"

namespace ropejit::rope {

using core::check_disjoint;
using core::check_same_shape;
using core::check_view;
using core::view_width;

namespace {
// The table's checks; its max_position.
int64_t check_table(const CosSinTable& table, int64_t rotary) {
  if (!table.cos || !table.sin) throw Error("table: null cos or sin pointer");
  if (table.dtype != DType::f32 && table.dtype != DType::bf16)
    throw Error(fmt::format("table: dtype {} is not supported: use f32 or bf16", dtype_name(table.dtype)));
  if (table.rotary_dim != rotary)
    throw Error(fmt::format("table: built for rotary_dim {}, but rotary_dim is {}", table.rotary_dim, rotary));
  if (table.max_position <= 0) throw Error("table: max_position must be positive");
  return table.max_position;
}

int64_t check_frequencies(const Frequencies& f, int64_t rotary) {
  if (f.mode != AngleMode::exact && f.mode != AngleMode::hf_compat)
    throw Error(fmt::format("frequencies: mode {} is neither exact nor hf_compat", int(f.mode)));
  if (f.mode == AngleMode::exact) {
    if (!f.phase_steps) throw Error("frequencies: null phase_steps pointer");
    if (reinterpret_cast<uintptr_t>(f.phase_steps) % 8) throw Error("frequencies: phase_steps is not aligned to 8 bytes");
  } else {
    if (!f.inv_freq) throw Error("frequencies: hf_compat needs the f32 inv_freq pointer");
    if (reinterpret_cast<uintptr_t>(f.inv_freq) % 4) throw Error("frequencies: inv_freq is not aligned to 4 bytes");
  }
  if (f.rotary_dim != rotary)
    throw Error(fmt::format("frequencies: made for rotary_dim {}, but rotary_dim is {}", f.rotary_dim, rotary));
  if (!std::isfinite(f.attention_factor) || !(f.attention_factor > 0))
    throw Error(fmt::format("frequencies: attention_factor {} must be positive and finite", f.attention_factor));
  if (f.max_position <= 0) throw Error("frequencies: max_position must be positive");
  if (f.sets < 1 || f.sets > 64) throw Error(fmt::format("frequencies: {} sets; 1 to 64", f.sets));
  if (f.sets > 1) {
    if (!f.attention_factors || reinterpret_cast<uintptr_t>(f.attention_factors) % 4)
      throw Error("frequencies: several sets need attention_factors (f32, one per set)");
    if (!f.set_index || reinterpret_cast<uintptr_t>(f.set_index) % 4)
      throw Error("frequencies: several sets need set_index (int32, one per sequence)");
  }
  return f.max_position;
}
}  // namespace

// A variable-length batch: pointers, dtype and the packed layout; on the host backend every offset and
// start too (the GPU's kernel leaves a token whose sequence or position is out of range untouched).
static void check_varlen(const Positions& p, const TensorView& q, int64_t max_position, const char* whose, bool host) {
  if (!p.cu_seqlens) throw Error("positions: varlen without cu_seqlens");
  if (p.ids) throw Error("positions: both ids and cu_seqlens given; varlen positions come from cu_seqlens");
  if (p.ids_dtype != DType::i32 && p.ids_dtype != DType::i64)
    throw Error(fmt::format("positions: cu_seqlens dtype {} is not supported: use i32 or i64", dtype_name(p.ids_dtype)));
  const auto size = uintptr_t(dtype_size(p.ids_dtype));
  if (reinterpret_cast<uintptr_t>(p.cu_seqlens) % size || reinterpret_cast<uintptr_t>(p.starts) % size)
    throw Error("positions: cu_seqlens or starts is not aligned to its elements");
  if (p.num_seqs < 1 || p.num_seqs > INT32_MAX)
    throw Error(fmt::format("positions: num_seqs {} must be from 1 to 2^31 - 1", p.num_seqs));
  if (q.batch != 1)
    throw Error(fmt::format("positions: a varlen batch is packed as [1, total_tokens, heads, head_dim]; q has batch {}",
                            q.batch));
  if (!p.starts && (p.offset < 0 || p.offset >= max_position))
    throw Error(fmt::format("positions: offset {} is outside {} [0, {})", p.offset, whose, max_position));
  if (!host) return;
  auto at = [&](const void* a, int64_t i) {
    return p.ids_dtype == DType::i32 ? int64_t(static_cast<const int32_t*>(a)[i]) : static_cast<const int64_t*>(a)[i];
  };
  if (at(p.cu_seqlens, 0) != 0) throw Error(fmt::format("positions: cu_seqlens[0] is {}, not 0", at(p.cu_seqlens, 0)));
  for (int64_t i = 0; i < p.num_seqs; ++i) {
    const int64_t begin = at(p.cu_seqlens, i), end = at(p.cu_seqlens, i + 1);
    if (end < begin) throw Error(fmt::format("positions: cu_seqlens decreases at {} ({} after {})", i + 1, end, begin));
    const int64_t start = p.starts ? at(p.starts, i) : p.offset;
    if (start < 0 || (end > begin && start > max_position - (end - begin)))
      throw Error(fmt::format("positions: sequence {} (start {}, {} tokens) runs outside {} [0, {})", i, start,
                              end - begin, whose, max_position));
  }
  if (at(p.cu_seqlens, p.num_seqs) != q.seq)
    throw Error(fmt::format("positions: cu_seqlens[{}] is {}, but q holds {} tokens", p.num_seqs,
                            at(p.cu_seqlens, p.num_seqs), q.seq));
}

// Which views may share elements (by elements, so disjoint head slices of one buffer are fine):
// in place, q and k; out of place, every output against every other view.
void check_overlaps(const Plan& p, bool with_k, bool out_of_place) {
  if (with_k) check_disjoint("k", p.k, "q", p.q);
  if (!out_of_place) return;
  check_disjoint("q_out", p.q_out, "q", p.q);
  if (!with_k) return;
  check_disjoint("k_out", p.k_out, "k", p.k);
  check_disjoint("k_out", p.k_out, "q", p.q);
  check_disjoint("q_out", p.q_out, "k", p.k);
  check_disjoint("q_out", p.q_out, "k_out", p.k_out);
}

PositionKind position_kind(const Positions& p) {
  const bool i32 = p.ids_dtype == DType::i32;
  if (p.cu_seqlens || p.num_seqs) return i32 ? PositionKind::varlen_i32 : PositionKind::varlen_i64;
  if (!p.ids) return PositionKind::offset;
  return i32 ? PositionKind::ids_i32 : PositionKind::ids_i64;
}

const char* angles_owner(const Plan& plan) {
  return plan.spec.angles == AngleMode::table ? "the table's" : "the frequencies'";
}

// Frequency sets: on the host backend each sequence's index is checked (the GPU's kernel leaves a
// sequence whose index is outside the sets untouched).
void check_set_indices(const AngleSource& angles, const Positions& positions, const TensorView& q, Backend backend) {
  const Frequencies& freq = angles.frequencies;
  if (!angles.in_kernel || freq.sets <= 1 || backend != Backend::host) return;
  const int64_t sequences = positions.cu_seqlens || positions.num_seqs ? positions.num_seqs : q.batch;
  for (int64_t i = 0; i < sequences; ++i) {
    const int32_t v = static_cast<const int32_t*>(freq.set_index)[i];
    if (v < 0 || v >= freq.sets)
      throw Error(fmt::format("frequencies: set_index[{}] = {} is outside [0, {})", i, v, freq.sets));
  }
}

// The positions' checks: pointers, dtypes, and (on the host backend, or for an offset) the range.
void check_positions(const Positions& positions, const TensorView& q, int64_t max_position, const char* whose,
                     Backend backend) {
  const int64_t tokens = q.batch * q.seq;
  if (positions.by_ids && !positions.ids) throw Error("positions: from_ids was given a null ids pointer");
  const bool varlen = positions.cu_seqlens || positions.num_seqs;
  if (varlen) {
    check_varlen(positions, q, max_position, whose, backend == Backend::host);
  } else if (positions.ids) {
    if (positions.ids_dtype != DType::i32 && positions.ids_dtype != DType::i64)
      throw Error(fmt::format("positions: ids dtype {} is not supported: use i32 or i64", dtype_name(positions.ids_dtype)));
    if (reinterpret_cast<uintptr_t>(positions.ids) % uintptr_t(dtype_size(positions.ids_dtype)))
      throw Error("positions: ids pointer is not aligned to its elements");
    if (backend == Backend::host) {  // host memory: every id can be checked before running
      for (int64_t i = 0; i < tokens * positions.components; ++i) {
        int64_t p = positions.ids_dtype == DType::i32 ? static_cast<const int32_t*>(positions.ids)[i]
                                                      : static_cast<const int64_t*>(positions.ids)[i];
        if (p < 0 || p >= max_position)
          throw Error(positions.components == 1
                          ? fmt::format("positions: id {} at token {} is outside {} [0, {})", p, i, whose, max_position)
                          : fmt::format("positions: id {} ({} of token {}) is outside {} [0, {})", p,
                                        "thw"[i / std::max<int64_t>(tokens, 1)], i % std::max<int64_t>(tokens, 1),
                                        whose, max_position));
      }
    }
  } else if (positions.offset < 0) {
    throw Error(fmt::format("positions: offset {} is negative", positions.offset));
  } else if (positions.offset > max_position - q.seq) {  // no overflow
    throw Error(fmt::format("positions: offset {} + seq {} runs past {} max_position {}", positions.offset,
                            q.seq, whose, max_position));
  }
}

Plan make_plan(const TensorView& q, const TensorView* k, const Positions& positions, const AngleSource& angles,
               const RopeOptions& options) {
  Plan plan;
  RopeSpec& spec = plan.spec;
  if (options.style != RopeStyle::neox && options.style != RopeStyle::gptj)
    throw Error(fmt::format("style {} is neither neox nor gptj", int(options.style)));
  if (options.backend != Backend::cuda && options.backend != Backend::host)
    throw Error(fmt::format("backend {} is neither cuda nor host", int(options.backend)));
  check_view("q", q);
  if (q.seq > 0 && q.batch > INT32_MAX / q.seq)
    throw Error(fmt::format("q: {} x {} tokens exceed the grid's limit of {}", q.batch, q.seq, INT32_MAX));
  if (k) {
    check_view("k", *k);
    check_same_shape("k", *k, "q", q, false);
  }
  const bool out_of_place = options.q_out.has_value() || options.k_out.has_value();
  if (out_of_place) {
    if (!options.q_out) throw Error("q_out: missing; out of place needs q_out (and k_out when k is given)");
    check_view("q_out", *options.q_out);
    check_same_shape("q_out", *options.q_out, "q", q, true, false);
    if (k) {
      if (!options.k_out) throw Error("k_out: missing; out of place with k needs k_out");
      check_view("k_out", *options.k_out);
      check_same_shape("k_out", *options.k_out, "k", *k, true, false);
      if (options.k_out->dtype != options.q_out->dtype)
        throw Error(fmt::format("k_out: dtype {} differs from q_out's {}", dtype_name(options.k_out->dtype),
                                dtype_name(options.q_out->dtype)));
    } else if (options.k_out) {
      throw Error("k_out: given without k");
    }
  }

  if (q.head_dim > 512 || q.head_dim % 2)
    throw Error(fmt::format("q: head_dim {} is not supported: it must be even and at most 512", q.head_dim));
  if (options.rotary_offset < 0 || options.rotary_offset >= q.head_dim)
    throw Error(fmt::format("rotary_offset {} must be from 0 to head_dim {} - 1", options.rotary_offset, q.head_dim));
  int64_t rotary = options.rotary_dim ? options.rotary_dim : q.head_dim - options.rotary_offset;
  if (rotary <= 0 || rotary % 2)
    throw Error(fmt::format("rotary_dim {} is not supported: it must be even and positive", rotary));
  if (rotary > q.head_dim - options.rotary_offset)
    throw Error(options.rotary_offset
                    ? fmt::format("rotary_dim {} from rotary_offset {} does not fit head_dim {}", rotary,
                                  options.rotary_offset, q.head_dim)
                    : fmt::format("rotary_dim {} is larger than head_dim {}", rotary, q.head_dim));
  const bool multimodal = options.mrope_section[0] || options.mrope_section[1] || options.mrope_section[2];
  if (positions.components != 1 && positions.components != 3)
    throw Error(fmt::format("positions: {} ids per token; 1, or 3 for multimodal RoPE", positions.components));
  if (multimodal != (positions.components == 3))
    throw Error(multimodal ? "mrope_section: multimodal RoPE needs three ids per token (Positions::multimodal)"
                           : "positions: three ids per token (Positions::multimodal) need mrope_section");
  if (multimodal && (positions.cu_seqlens || positions.num_seqs))
    throw Error("positions: multimodal RoPE takes per-token ids, not varlen positions");
  // The sections themselves (counts, their sum, interleaving) are the spec's to check (validate).
  if (q.heads > 4096 || (k && k->heads > 4096)) throw Error("q/k: more than 4096 heads is not supported");

  const int64_t tokens = q.batch * q.seq;

  // Table or frequencies
  const CosSinTable& table = angles.table;
  const int64_t max_position =
      angles.in_kernel ? check_frequencies(angles.frequencies, rotary) : check_table(table, rotary);
  const char* source = angles.in_kernel ? "frequencies" : "table";
  const char* whose = angles.in_kernel ? "the frequencies'" : "the table's";

  check_positions(positions, q, max_position, whose, options.backend);
  const bool varlen = positions.cu_seqlens || positions.num_seqs;

  check_set_indices(angles, positions, q, options.backend);  // after the positions: num_seqs is valid

  spec.head_dim = int(q.head_dim);
  spec.rotary_dim = int(rotary);
  spec.style = options.style;
  spec.inverse = options.inverse;
  spec.angles = angles.in_kernel ? angles.frequencies.mode : AngleMode::table;
  spec.frequency_sets = angles.in_kernel && angles.frequencies.sets > 1;
  spec.rotary_offset = int(options.rotary_offset);
  if (options.q_out && options.q_out->dtype != q.dtype) spec.out_dtype = options.q_out->dtype;
  spec.mrope_section = options.mrope_section;
  spec.mrope_interleaved = options.mrope_interleaved;
  spec.dtype = q.dtype;
  spec.table_dtype = angles.in_kernel ? DType::f32 : table.dtype;
  spec.q_heads = int(q.heads);
  spec.k_heads = k ? int(k->heads) : 0;
  spec.in_place = !out_of_place;
  spec.positions = position_kind(positions);
  if (varlen) {
    // Search steps for indices up to num_seqs, in steps of 4 (fewer specialisations).
    int depth = 0;
    while ((int64_t(1) << depth) <= positions.num_seqs) ++depth;
    spec.varlen_depth = (depth + 3) / 4 * 4;
    spec.varlen_starts = positions.starts != nullptr;
  }
  spec.validate();

  // Vector width the memory allows: every q/k pointer and stride, and the table rows. A view aligned
  // to 16 bytes takes any width (an access wider than 16 bytes is split into 16-byte ones).
  auto cap = [](const TensorView& v) {
    const int w = view_width(v);
    return w * dtype_size(v.dtype) == 16 ? 16 : w;
  };
  int w = std::min(view_width(q), cap(q));
  if (k) w = std::min(w, cap(*k));
  if (options.q_out) w = std::min(w, cap(*options.q_out));
  if (options.k_out) w = std::min(w, cap(*options.k_out));
  auto tab_ok = [&](int w) {
    const Frequencies& f = angles.frequencies;
    if (angles.in_kernel)
      return f.mode == AngleMode::exact
                 ? reinterpret_cast<uintptr_t>(f.phase_steps) % uintptr_t(std::min(16, w * 8)) == 0
                 : reinterpret_cast<uintptr_t>(f.inv_freq) % uintptr_t(std::min(16, w * 4)) == 0;
    uintptr_t align = uintptr_t(std::min(16, w * dtype_size(table.dtype)));
    return reinterpret_cast<uintptr_t>(table.cos) % align == 0 && reinterpret_cast<uintptr_t>(table.sin) % align == 0;
  };
  while (w > 1 && !tab_ok(w)) w /= 2;
  if (!tab_ok(1)) throw Error(fmt::format("{}: pointers are not aligned to their elements", source));
  plan.width_cap = w;

  plan.q = q;
  plan.q_out = options.q_out ? *options.q_out : q;
  if (k) {
    plan.k = *k;
    plan.k_out = options.k_out ? *options.k_out : *k;
  } else {
    plan.k = plan.k_out = TensorView{nullptr, q.dtype, 0, 0, 0, 0, 0, 0, 0};
  }
  plan.angles = angles;
  plan.max_position = max_position;
  plan.positions = positions;
  plan.tokens = tokens;
  check_overlaps(plan, k != nullptr, out_of_place);
  return plan;
}

}  // namespace ropejit::rope
