// Fused per-head QK-RMSNorm + RoPE (apply_qk_norm_rope) on the host backend against the fp64 reference
// (reference_qk_norm_rope; the tolerance is the reference's own `relative` per unit of scale, plus half
// an ulp of the output dtype, as compare_to_reference applies it). Inputs are random in [-2, 2), with
// one all-zero head row and one constant head row per tensor; outputs out of place are poisoned (every
// byte 0xff); bytes outside the output views must keep their poison (or, in place, their values).
// The matrix varies one axis at a time around a base case, except head_dim x style x dtype, which is
// run in full.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "ropejit/ropejit.hpp"
#include "check_error.hpp"
#include "support.hpp"

using namespace ropejit;
using namespace ropejit::test;

namespace {

struct NormCase {
  RopeStyle style = RopeStyle::neox;
  DType dtype = DType::bf16;
  DType table_dtype = DType::f32;
  int head_dim = 128, rotary_dim = 0;  // 0: head_dim
  int q_heads = 4, k_heads = 2;        // k_heads 0: q only (k = nullptr, k_weight = nullptr)
  bool in_place = true;
  Pos pos = Pos::offset;
  Layout layout = Layout::bshd;
  std::optional<Layout> out_layout;  // out of place: the outputs' layout (default: the inputs')
  int batch = 2, seq = 3;
  bool weight_in_dtype = false;  // weights in q's dtype instead of f32
  bool one_plus_weight = false;
  int weight_offset = 0;  // elements: weights not aligned beyond their element size
  double eps = 1e-6;
  int threads = 0, vector_width = 0, unroll = 0, streaming = -1;  // 0 / -1: heuristic
  double theta = 10000.0;
  bool exact_angles = false;   // cos/sin computed in the kernel (FrequencyTable)
  int64_t position_base = 0;   // added to every position (exact angles only)
  bool hf_compat = false;      // with exact_angles: HF's f32 angles
  int rotary_offset = 0;       // first rotated dim of a head
  std::optional<DType> out_dtype;      // out of place: outputs of another dtype
  std::array<int, 3> mrope_section{};  // multimodal: three ids per token (pos ids32/ids64)
  bool mrope_interleaved = false;

  int rotary() const { return rotary_dim ? rotary_dim : head_dim - rotary_offset; }
  bool multimodal() const { return mrope_section[0] || mrope_section[1] || mrope_section[2]; }
  DType weight_dtype() const { return weight_in_dtype ? dtype : DType::f32; }
  std::string describe() const {
    return fmt::format("{} {} table {} D={} R={} heads {}/{} {} pos {} layout {}{} B={} S={} w {}{}{} eps {} t={} w={} u={}",
                       style == RopeStyle::neox ? "neox" : "gptj", dtype_name(dtype), dtype_name(table_dtype), head_dim,
                       rotary(), q_heads, k_heads, in_place ? "in-place" : "out-of-place",
                       pos == Pos::offset ? "offset" : pos == Pos::ids32 ? "ids32" : "ids64", layout_name(layout),
                       out_layout ? fmt::format(" -> {}", layout_name(*out_layout)) : "", batch, seq,
                       dtype_name(weight_dtype()), one_plus_weight ? " (1+w)" : "",
                       weight_offset ? fmt::format(" +{}", weight_offset) : "", eps, threads, vector_width, unroll) +
           (exact_angles ? fmt::format(" {} angles theta {} from {}", hf_compat ? "hf_compat" : "exact", theta, position_base)
                         : "") +
           (rotary_offset ? fmt::format(" rotary_offset {}", rotary_offset) : "") +
           (out_dtype ? fmt::format(" out {}", dtype_name(*out_dtype)) : "") +
           (multimodal() ? fmt::format(" mrope{} {}/{}/{}", mrope_interleaved ? " interleaved" : "", mrope_section[0],
                                       mrope_section[1], mrope_section[2])
                         : "");
  }
};

constexpr int64_t kMaxPos = 300;


// One head row of a tensor set to a value (0: a row of zeros).
void set_row(HostTensor& t, int64_t b, int64_t s, int64_t h, double value) {
  const auto& v = t.view;
  int64_t e = b * v.stride_batch + s * v.stride_seq + h * v.stride_head;
  for (int64_t d = 0; d < v.head_dim; ++d) store_from_double(v.dtype, t.bytes.data(), e + d, value);
}

struct Weights {
  std::vector<uint8_t> bytes;
  int offset = 0;
  DType dtype = DType::f32;
  const void* data() const { return bytes.data() + size_t(offset) * size_t(dtype_size(dtype)); }
};

Weights random_weights(DType dtype, int64_t n, int offset, std::mt19937_64& rng) {
  Weights w;
  w.dtype = dtype;
  w.offset = offset;
  w.bytes.resize(size_t(n + offset + 8) * size_t(dtype_size(dtype)));
  std::uniform_real_distribution<double> u(-2.0, 2.0);
  for (int64_t i = 0; i < n + offset + 8; ++i) {
    double v;
    do v = u(rng);
    while (v == 0.0);
    store_from_double(dtype, w.bytes.data(), i, v);
  }
  return w;
}

struct NormResult {
  Comparison q, k;
  bool gaps_untouched = true;   // outside the output views (and out-of-place inputs) nothing changed
  bool weights_untouched = true;
};

NormResult run_norm_case(const NormCase& c, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const bool has_k = c.k_heads > 0;
  HostTensor q(c.layout, c.dtype, c.batch, c.seq, c.q_heads, c.head_dim);
  HostTensor k(c.layout, c.dtype, c.batch, c.seq, has_k ? c.k_heads : 1, c.head_dim);
  q.fill_random(rng);
  k.fill_random(rng);
  // A row of zeros and a constant row in each tensor (the norm of a zero row is 0 * 1/sqrt(eps)).
  set_row(q, 0, 0, 0, 0.0);
  set_row(q, c.batch - 1, c.seq - 1, c.q_heads - 1, 1.375);  // with one row in all, it is the constant one
  set_row(k, c.batch - 1, 0, 0, 0.0);
  set_row(k, 0, c.seq - 1, has_k ? c.k_heads - 1 : 0, -0.625);

  Weights wq = random_weights(c.weight_dtype(), c.head_dim, c.weight_offset, rng);
  Weights wk = random_weights(c.weight_dtype(), c.head_dim, c.weight_offset, rng);
  const auto wq0 = wq.bytes, wk0 = wk.bytes;

  const int64_t tokens = int64_t(c.batch) * c.seq;
  const int components = c.multimodal() ? 3 : 1;
  std::vector<int32_t> ids32(static_cast<size_t>(tokens * components));
  std::vector<int64_t> ids64(static_cast<size_t>(tokens * components));
  std::uniform_int_distribution<int64_t> upos(1, kMaxPos - 1);
  const int64_t base = c.position_base;
  for (size_t i = 0; i < ids64.size(); ++i) ids64[i] = base + upos(rng), ids32[i] = int32_t(ids64[i]);
  const int64_t offset = base + std::uniform_int_distribution<int64_t>(1, kMaxPos - c.seq)(rng);
  Positions pos = c.pos == Pos::offset  ? Positions::contiguous(offset)
                  : c.pos == Pos::ids32 ? Positions::from_ids(ids32.data(), DType::i32)
                                        : Positions::from_ids(ids64.data(), DType::i64);
  pos.components = components;

  RopeTable table(Backend::host, kMaxPos, c.rotary(), c.theta, c.table_dtype);
  const auto freqs = FrequencyTable::from_theta(Backend::host, c.rotary(), c.theta);
  const AngleMode mode = c.hf_compat ? AngleMode::hf_compat : AngleMode::exact;
  const auto ref_table = c.exact_angles ? ReferenceTable::from_frequencies(freqs.inv_freq(), 1.0, int64_t(1) << 32, mode)
                                        : ReferenceTable::from(table.view());
  const AngleSource angles = c.exact_angles ? AngleSource(freqs.view(mode)) : AngleSource(table.view());

  QkNorm norm;
  norm.q_weight = wq.data();
  norm.k_weight = has_k ? wk.data() : nullptr;
  norm.weight_dtype = c.weight_dtype();
  norm.eps = c.eps;
  norm.one_plus_weight = c.one_plus_weight;
  const Layout ol = c.out_layout.value_or(c.layout);
  const DType od = c.out_dtype.value_or(c.dtype);
  HostTensor q_out(ol, od, c.batch, c.seq, c.q_heads, c.head_dim);
  HostTensor k_out(ol, od, c.batch, c.seq, has_k ? c.k_heads : 1, c.head_dim);

  RopeOptions opt;
  opt.backend = Backend::host;
  opt.style = c.style;
  opt.rotary_dim = c.rotary_dim;
  opt.rotary_offset = c.rotary_offset;
  opt.mrope_section = c.mrope_section;
  opt.mrope_interleaved = c.mrope_interleaved;
  opt.threads = c.threads;
  opt.vector_width = c.vector_width;
  opt.unroll = c.unroll;
  opt.streaming = c.streaming;
  if (!c.in_place) {
    opt.q_out = q_out.view;
    if (has_k) opt.k_out = k_out.view;
  }
  // The reference reads the weights through `norm`'s dtype; each tensor with its own weight.
  const auto ref_q = reference_qk_norm_rope(q.view, wq.data(), norm, pos, ref_table, opt);
  const auto ref_k = has_k ? reference_qk_norm_rope(k.view, wk.data(), norm, pos, ref_table, opt) : ReferenceResult{};
  q_out.poison();
  k_out.poison();
  const auto q0 = q.bytes, k0 = k.bytes, qo0 = q_out.bytes, ko0 = k_out.bytes;
  apply_qk_norm_rope(q.view, has_k ? &k.view : nullptr, pos, angles, norm, opt);

  NormResult r;
  const HostTensor& qr = c.in_place ? q : q_out;
  const HostTensor& kr = c.in_place ? k : k_out;
  r.q = compare_to_reference(qr.view, ref_q);
  if (has_k) r.k = compare_to_reference(kr.view, ref_k);
  if (c.in_place) {
    r.gaps_untouched = gaps_equal(q, q0) && gaps_equal(k, k0);
  } else {
    r.gaps_untouched = gaps_equal(q_out, qo0) && gaps_equal(k_out, ko0) && q.bytes == q0 &&
                       k.bytes == k0;
  }
  if (!has_k && c.in_place) r.gaps_untouched = r.gaps_untouched && k.bytes == k0;  // k was not given
  if (!has_k && !c.in_place) r.gaps_untouched = r.gaps_untouched && k_out.bytes == ko0;
  r.weights_untouched = wq.bytes == wq0 && wk.bytes == wk0;
  return r;
}

void check_norm_case(const NormCase& c, uint64_t seed) {
  INFO(c.describe());
  NormResult r;
  try {
    r = run_norm_case(c, seed);
  } catch (const Error& e) {
    FAIL_CHECK("threw: " << std::string(e.what()));
    return;
  }
  CHECK_MESSAGE(r.q.ok(), "q: " << r.q.mismatches << " of " << r.q.checked << " wrong, first " << r.q.first_mismatch);
  if (c.k_heads)
    CHECK_MESSAGE(r.k.ok(), "k: " << r.k.mismatches << " of " << r.k.checked << " wrong, first " << r.k.first_mismatch);
  CHECK_MESSAGE(r.gaps_untouched, "memory outside the output views (or an out-of-place input, or k) was written");
  CHECK(r.weights_untouched);
}

NormCase base() { return NormCase{}; }

// Runs `fn` and requires an invalid_argument ropejit::Error whose message contains every word.
template <typename Fn>
void check_error(Fn&& fn, std::initializer_list<std::string> words) {
  test::check_error(std::forward<Fn>(fn), ErrorKind::invalid_argument, words);
}

}  // namespace

TEST_CASE("qk_norm_rope: head_dim 64, 80, 96, 128, 192, 256 x NeoX, GPT-J x f32, f16, bf16") {
  uint64_t seed = 1;
  int n = 0;
  for (int d : {64, 80, 96, 128, 192, 256})
    for (RopeStyle style : {RopeStyle::neox, RopeStyle::gptj})
      for (DType dt : {DType::f32, DType::f16, DType::bf16}) {
        NormCase c = base();
        c.head_dim = d;
        c.style = style;
        c.dtype = dt;
        check_norm_case(c, seed++);
        ++n;
      }
  MESSAGE(n << " cases");
}

TEST_CASE("qk_norm_rope: partial rotary (the norm covers the whole head; the part past rotary_dim is normalised)") {
  uint64_t seed = 100;
  const std::pair<int, int> dims[] = {{64, 32}, {128, 64}, {128, 32}, {80, 40}, {96, 64}, {96, 48}, {192, 64}, {256, 128}, {256, 64}};
  for (auto [d, r] : dims)
    for (RopeStyle style : {RopeStyle::neox, RopeStyle::gptj}) {
      NormCase c = base();
      c.head_dim = d;
      c.rotary_dim = r;
      c.style = style;
      c.dtype = seed % 3 == 0 ? DType::f32 : seed % 3 == 1 ? DType::f16 : DType::bf16;
      check_norm_case(c, seed++);
      c.in_place = false;  // the pass-through part goes to the output too
      c.layout = Layout::padded;
      check_norm_case(c, seed++);
    }
}

TEST_CASE("qk_norm_rope: padded lanes still write their share of the part past rotary_dim") {
  // head_dim 80, rotary_dim 40, f32: 20 pairs in 5 chunks of 4, padded to 8 lanes for the norm's
  // reduction; the 40 elements past rotary_dim are 10 chunks of 4 spread over all 8 lanes, so lanes
  // 5..7 (the padded ones) own elements 60..71. One token, one head, out of place into poison.
  for (int d : {80, 96}) {
    NormCase c = base();
    c.dtype = DType::f32;
    c.head_dim = d;
    c.rotary_dim = d / 2;
    c.batch = c.seq = c.q_heads = 1;
    c.k_heads = 0;
    c.in_place = false;
    check_norm_case(c, 42);
  }
}

TEST_CASE("qk_norm_rope: in place and out of place, positions, layouts") {
  uint64_t seed = 200;
  for (DType dt : {DType::f32, DType::f16, DType::bf16})
    for (bool in_place : {true, false}) {
      NormCase c = base();
      c.dtype = dt;
      c.in_place = in_place;
      check_norm_case(c, seed++);
    }
  for (Pos p : {Pos::offset, Pos::ids32, Pos::ids64})
    for (bool in_place : {true, false}) {
      NormCase c = base();
      c.pos = p;
      c.in_place = in_place;
      check_norm_case(c, seed++);
    }
  for (Layout l : {Layout::bshd, Layout::sbhd, Layout::bhsd, Layout::padded})
    for (bool in_place : {true, false}) {
      NormCase c = base();
      c.layout = l;
      c.in_place = in_place;
      c.style = in_place ? RopeStyle::neox : RopeStyle::gptj;
      check_norm_case(c, seed++);
    }
  {  // inputs padded, outputs dense, and the reverse
    NormCase c = base();
    c.in_place = false;
    c.layout = Layout::padded;
    c.out_layout = Layout::bshd;
    check_norm_case(c, seed++);
    c.layout = Layout::bshd;
    c.out_layout = Layout::padded;
    c.head_dim = 96;
    c.rotary_dim = 32;
    check_norm_case(c, seed++);
  }
  {  // a bf16 table
    NormCase c = base();
    c.table_dtype = DType::bf16;
    check_norm_case(c, seed++);
  }
}

TEST_CASE("qk_norm_rope: in-kernel exact angles at positions up to 2^31 - 1, theta 1e4 to 1e7") {
  uint64_t seed = 880;
  for (int64_t base : {int64_t(0), (int64_t(1) << 24) + 1, (int64_t(1) << 31) - 400})
    for (double theta : {1e4, 1e6, 1e7}) {
      NormCase c;
      c.exact_angles = true;
      c.position_base = base;
      c.theta = theta;
      c.style = seed % 2 ? RopeStyle::gptj : RopeStyle::neox;
      c.dtype = seed % 3 == 0 ? DType::f32 : DType::bf16;
      c.head_dim = seed % 4 == 1 ? 96 : 128;
      c.rotary_dim = seed % 5 == 2 ? 64 : 0;
      c.pos = seed % 2 ? Pos::ids64 : Pos::offset;
      c.in_place = seed % 3 != 1;
      check_norm_case(c, seed++);
    }
}

TEST_CASE("qk_norm_rope: the rotations of real checkpoints: rotary_offset, outputs of another dtype, multimodal, hf_compat") {
  uint64_t seed = 8800;
  for (RopeStyle style : {RopeStyle::neox, RopeStyle::gptj})
    for (DType dtype : {DType::f32, DType::f16, DType::bf16}) {
      NormCase c = base();
      c.style = style;
      c.dtype = dtype;
      c.head_dim = 192, c.rotary_dim = 64, c.rotary_offset = 128;  // MLA's rope part at the end
      check_norm_case(c, seed++);
      c = base();
      c.style = style;
      c.dtype = dtype;
      c.head_dim = 128, c.rotary_dim = 32, c.rotary_offset = 32;  // pass-through on both sides
      c.in_place = false;
      check_norm_case(c, seed++);
      c = base();
      c.style = style;
      c.dtype = dtype;
      c.in_place = false;
      c.out_dtype = dtype == DType::f32 ? DType::bf16 : DType::f32;
      c.rotary_dim = 64;
      check_norm_case(c, seed++);
      c = base();
      c.style = style;
      c.dtype = dtype;
      c.pos = seed % 2 ? Pos::ids32 : Pos::ids64;
      c.mrope_section = seed % 3 ? std::array<int, 3>{16, 24, 24} : std::array<int, 3>{24, 20, 20};
      c.mrope_interleaved = seed % 3 == 0;
      c.exact_angles = seed % 2 == 0;
      check_norm_case(c, seed++);
      c = base();
      c.style = style;
      c.dtype = dtype;
      c.exact_angles = c.hf_compat = true;
      c.position_base = (int64_t(1) << 31) - 400;
      check_norm_case(c, seed++);
    }
}

TEST_CASE("qk_norm_rope: weights in f32 and in the input dtype, one_plus_weight, unaligned weights") {
  uint64_t seed = 300;
  for (DType dt : {DType::f16, DType::bf16, DType::f32})
    for (bool in_dtype : {false, true})
      for (bool one_plus : {false, true}) {
        if (dt == DType::f32 && in_dtype) continue;  // the same as f32 weights
        NormCase c = base();
        c.dtype = dt;
        c.weight_in_dtype = in_dtype;
        c.one_plus_weight = one_plus;
        c.head_dim = one_plus ? 80 : 128;
        c.style = in_dtype ? RopeStyle::gptj : RopeStyle::neox;
        check_norm_case(c, seed++);
      }
  for (int off : {1, 2, 3}) {  // weights aligned to 4, 8, 4 bytes (f32): narrower accesses, same results
    NormCase c = base();
    c.weight_offset = off;
    c.dtype = off == 2 ? DType::f32 : DType::bf16;
    check_norm_case(c, seed++);
  }
  {
    NormCase c = base();
    c.weight_in_dtype = true;  // bf16 weights at an odd element: 2-byte aligned only
    c.weight_offset = 1;
    c.head_dim = 96;
    check_norm_case(c, seed++);
  }
}

TEST_CASE("qk_norm_rope: q only, head counts, eps, constant and zero rows") {
  uint64_t seed = 400;
  for (bool in_place : {true, false})
    for (RopeStyle style : {RopeStyle::neox, RopeStyle::gptj}) {
      NormCase c = base();
      c.k_heads = 0;  // k = nullptr, k_weight = nullptr
      c.in_place = in_place;
      c.style = style;
      c.head_dim = style == RopeStyle::neox ? 128 : 96;
      check_norm_case(c, seed++);
    }
  for (auto [qh, kh] : {std::pair{1, 1}, std::pair{7, 3}, std::pair{32, 8}, std::pair{5, 0}}) {
    NormCase c = base();
    c.q_heads = qh;
    c.k_heads = kh;
    c.dtype = DType::f16;
    c.head_dim = qh == 7 ? 192 : 64;
    check_norm_case(c, seed++);
  }
  for (double eps : {1e-12, 1e-5, 0.5, 1e4, 1e20}) {  // tiny to far larger than mean(x^2) <= 4
    NormCase c = base();
    c.eps = eps;
    c.dtype = eps > 1 ? DType::f32 : DType::bf16;
    check_norm_case(c, seed++);
  }
  {  // one token of one head: a constant row alone
    NormCase c = base();
    c.batch = 1;
    c.seq = 1;
    c.q_heads = 1;
    c.k_heads = 1;
    check_norm_case(c, seed++);
  }
}

TEST_CASE("qk_norm_rope: explicit configs from describe_qk_norm_rope's candidates") {
  uint64_t seed = 500;
  int runs = 0;
  // The odd head_dims pad their lanes to a power of two (80: 40 pairs; width 1 gives 64 lanes, a
  // reduction across two warps); 256 in f32 with width 1 gives 128 lanes.
  for (NormCase c : {base(), [] { NormCase x; x.head_dim = 80; x.style = RopeStyle::gptj; return x; }(),
                     [] { NormCase x; x.head_dim = 192; x.rotary_dim = 128; x.dtype = DType::f16; x.in_place = false; return x; }(),
                     [] { NormCase x; x.head_dim = 256; x.dtype = DType::f32; x.q_heads = 3; x.k_heads = 1; return x; }()}) {
    HostTensor q(c.layout, c.dtype, c.batch, c.seq, c.q_heads, c.head_dim), k(c.layout, c.dtype, c.batch, c.seq, c.k_heads, c.head_dim);
    HostTensor qo = q, ko = k;
    RopeTable table(Backend::host, kMaxPos, c.rotary(), 10000.0, c.table_dtype);
    std::vector<float> w(size_t(c.head_dim), 1.0f);
    QkNorm norm;
    norm.q_weight = w.data();
    norm.k_weight = w.data();
    RopeOptions opt;
    opt.backend = Backend::host;
    opt.style = c.style;
    opt.rotary_dim = c.rotary_dim;
    if (!c.in_place) opt.q_out = qo.view, opt.k_out = ko.view;
    const KernelChoice choice = describe_qk_norm_rope(q.view, &k.view, Positions::contiguous(1), table.view(), norm, opt);
    INFO(c.describe() << " heuristic " << choice.config.key() << " of " << choice.candidates.size() << " candidates");
    CHECK((choice.source == "heuristic" || choice.source == "tuned"));  // "tuned" where a tuning file has it
    REQUIRE(!choice.candidates.empty());
    CHECK(std::find(choice.candidates.begin(), choice.candidates.end(), choice.config) != choice.candidates.end());
    // A handful: the narrowest and widest widths at the fewest and most threads, and a few between.
    std::vector<KernelConfig> pick;
    auto add = [&](const KernelConfig& cfg) {
      if (std::find(pick.begin(), pick.end(), cfg) == pick.end()) pick.push_back(cfg);
    };
    add(choice.candidates.front());
    add(choice.candidates.back());
    for (size_t i = 1; i < 6; ++i) add(choice.candidates[i * choice.candidates.size() / 6]);
    int min_w = 1 << 30;
    for (const auto& cfg : choice.candidates) min_w = std::min(min_w, cfg.vector_width);
    for (const auto& cfg : choice.candidates)  // the narrowest width at the most threads: the most lanes
      if (cfg.vector_width == min_w && cfg.unroll == 1 && cfg.threads == 512) add(cfg);
    std::string keys;
    for (const auto& cfg : pick) keys.append(" ").append(cfg.key());
    MESSAGE(c.describe() << ": heuristic " << choice.config.key() << "; of " << choice.candidates.size()
                         << " candidates ran" << keys);
    for (const auto& cfg : pick) {
      RopeOptions o = opt;  // what the call below will ask for: exactly this config
      o.threads = cfg.threads, o.vector_width = cfg.vector_width, o.unroll = cfg.unroll, o.streaming = cfg.streaming;
      const KernelChoice asked = describe_qk_norm_rope(q.view, &k.view, Positions::contiguous(1), table.view(), norm, o);
      CHECK(asked.source == "options");
      CHECK(asked.config == cfg);
      NormCase x = c;
      x.threads = cfg.threads;
      x.vector_width = cfg.vector_width;
      x.unroll = cfg.unroll;
      x.streaming = cfg.streaming;
      INFO("config " << cfg.key());
      check_norm_case(x, seed++);
      ++runs;
    }
  }
  MESSAGE(runs << " configs run");
}

TEST_CASE("qk_norm_rope: bad input throws an Error naming it and writes nothing") {
  HostTensor q(Layout::bshd, DType::bf16, 2, 3, 4, 64), k(Layout::bshd, DType::bf16, 2, 3, 2, 64);
  HostTensor q_out(Layout::bshd, DType::bf16, 2, 3, 4, 64), k_out(Layout::bshd, DType::bf16, 2, 3, 2, 64);
  std::mt19937_64 rng(9);
  q.fill_random(rng);
  k.fill_random(rng);
  q_out.poison();
  k_out.poison();
  const auto q0 = q.bytes, k0 = k.bytes, qo0 = q_out.bytes, ko0 = k_out.bytes;
  RopeTable table(Backend::host, 64, 64, 10000.0, DType::f32);
  std::vector<float> w32(64, 0.5f);
  std::vector<uint16_t> w16(64, float_to_f16(0.5f));
  auto untouched = [&] { return q.bytes == q0 && k.bytes == k0 && q_out.bytes == qo0 && k_out.bytes == ko0; };

  for (bool in_place : {true, false}) {
    INFO(std::string(in_place ? "in place" : "out of place"));
    RopeOptions opt;
    opt.backend = Backend::host;
    if (!in_place) opt.q_out = q_out.view, opt.k_out = k_out.view;
    auto run = [&](const QkNorm& norm, bool with_k = true) {
      apply_qk_norm_rope(q.view, with_k ? &k.view : nullptr, Positions::contiguous(1), table.view(), norm, opt);
    };
    auto describe = [&](const QkNorm& norm) {
      (void)describe_qk_norm_rope(q.view, &k.view, Positions::contiguous(1), table.view(), norm, opt);
    };
    QkNorm good;
    good.q_weight = w32.data();
    good.k_weight = w32.data();

    QkNorm n = good;
    n.q_weight = nullptr;
    check_error([&] { run(n); }, {"q_weight", "null"});
    check_error([&] { describe(n); }, {"q_weight"});
    CHECK(untouched());

    n = good;
    n.k_weight = nullptr;
    check_error([&] { run(n); }, {"k_weight", "null"});
    CHECK(untouched());

    n = good;
    n.weight_dtype = DType::f16;  // f16 weights for bf16 q and k
    n.q_weight = n.k_weight = w16.data();
    check_error([&] { run(n); }, {"weight dtype", "f16", "bf16"});
    CHECK(untouched());
    n.weight_dtype = DType::i32;
    check_error([&] { run(n); }, {"weight dtype", "i32"});
    CHECK(untouched());

    for (double eps : {0.0, -1e-6, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
                       -std::numeric_limits<double>::infinity()}) {
      INFO("eps " << eps);
      n = good;
      n.eps = eps;
      check_error([&] { run(n); }, {"eps"});
      check_error([&] { describe(n); }, {"eps"});
      CHECK(untouched());
    }

    n = good;
    n.q_weight = reinterpret_cast<const uint8_t*>(w32.data()) + 2;  // not aligned to its f32 elements
    check_error([&] { run(n); }, {"weight", "aligned"});
    CHECK(untouched());

    // RoPE's own checks still apply.
    n = good;
    RopeTable small(Backend::host, 64, 32, 10000.0, DType::f32);
    check_error([&] { apply_qk_norm_rope(q.view, &k.view, Positions::contiguous(1), small.view(), n, opt); }, {"rotary_dim"});
    CHECK(untouched());

    // And a good call works (q only: k_weight may then be null).
    n = good;
    n.k_weight = nullptr;
    opt.k_out.reset();
    run(n, false);
    CHECK(!untouched());
    q.bytes = q0, q_out.bytes = qo0;
  }
}

TEST_CASE("qk_norm_rope: a second call with the same spec does no code generation") {
  NormCase c = base();
  c.head_dim = 48;  // a spec no other case here uses
  c.q_heads = 3;
  c.k_heads = 1;
  c.dtype = DType::f16;
  const Stats before = stats();
  check_norm_case(c, 1);
  const Stats mid = stats();
  CHECK(mid.kernels_generated == before.kernels_generated + 1);
  check_norm_case(c, 2);  // other data, other positions: the same spec
  const Stats after = stats();
  CHECK(after.kernels_generated == mid.kernels_generated);
  CHECK(after.memory_hits == mid.memory_hits + 1);
  c.one_plus_weight = true;  // a different spec: generated
  check_norm_case(c, 3);
  CHECK(stats().kernels_generated == after.kernels_generated + 1);
}
