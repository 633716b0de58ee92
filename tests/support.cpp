#include "support.hpp"

#include <algorithm>
#include <optional>

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>

namespace ropejit::test {

const char* layout_name(Layout l) {
  switch (l) {
    case Layout::bshd: return "BSHD";
    case Layout::sbhd: return "SBHD";
    case Layout::bhsd: return "BHSD";
    case Layout::padded: return "BSHD+pad";
  }
  return "?";
}

std::string Case::describe() const {
  return fmt::format("{} {} table {} D={} R={} heads {}/{} {} pos {} layout {} B={} S={} t={} w={} u={} cs={} tok={}{}{}",
                     style == RopeStyle::neox ? "neox" : "gptj", dtype_name(dtype), dtype_name(table_dtype), head_dim,
                     rotary_dim, q_heads, k_heads, in_place ? "in-place" : "out-of-place",
                     pos == Pos::offset ? "offset" : pos == Pos::ids32 ? "ids32" : pos == Pos::ids64 ? "ids64"
                     : pos == Pos::varlen32 ? "varlen32" : "varlen64", layout_name(layout), batch,
                     seq, threads, vector_width, unroll, streaming, tokens, inverse ? " inverse" : "",
                     exact_angles ? fmt::format(" {} angles theta {} positions from {}", hf_compat ? "hf_compat" : "exact",
                                                theta, position_base)
                                  : "") +
         (rotary_offset ? fmt::format(" rotary_offset {}", rotary_offset) : "") +
         (out_dtype ? fmt::format(" out {}", dtype_name(*out_dtype)) : "") +
         (mrope_section[0] || mrope_section[1] || mrope_section[2]
              ? fmt::format(" mrope{} {}/{}/{}", mrope_interleaved ? " interleaved" : "", mrope_section[0],
                            mrope_section[1], mrope_section[2])
              : "");
}

HostTensor::HostTensor(Layout layout, DType dtype, int64_t b, int64_t s, int64_t h, int64_t d) {
  switch (layout) {
    case Layout::bshd: view = TensorView::bshd(nullptr, dtype, b, s, h, d); break;
    case Layout::sbhd: view = TensorView::sbhd(nullptr, dtype, b, s, h, d); break;
    case Layout::bhsd: view = TensorView::bhsd(nullptr, dtype, b, s, h, d); break;
    case Layout::padded: {  // gaps between heads, tokens and batches: writes there are caught
      int64_t hs = d + 8, ss = h * hs + 16, bs = s * ss + 8;
      view = TensorView{nullptr, dtype, b, s, h, d, bs, ss, hs};
      break;
    }
  }
  int64_t elems = (b - 1) * view.stride_batch + (s - 1) * view.stride_seq + (h - 1) * view.stride_head + d;
  if (layout == Layout::padded) elems += 8;
  bytes.resize(size_t(elems) * size_t(dtype_size(dtype)));
  view.data = bytes.data();
}

HostTensor::HostTensor(const HostTensor& o) : bytes(o.bytes), view(o.view) { view.data = bytes.data(); }

void HostTensor::fill_random(std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(-2.0, 2.0);
  int64_t n = int64_t(bytes.size()) / dtype_size(view.dtype);
  for (int64_t i = 0; i < n; ++i) store_from_double(view.dtype, bytes.data(), i, u(rng));
}

void HostTensor::poison() { std::memset(bytes.data(), 0xff, bytes.size()); }

bool gaps_equal(const HostTensor& a, const std::vector<uint8_t>& b) {
  std::vector<bool> inside(a.bytes.size(), false);
  const auto& v = a.view;
  int es = dtype_size(v.dtype);
  for (int64_t i = 0; i < v.batch; ++i)
    for (int64_t j = 0; j < v.seq; ++j)
      for (int64_t h = 0; h < v.heads; ++h) {
        int64_t e = i * v.stride_batch + j * v.stride_seq + h * v.stride_head;
        for (int64_t x = e * es; x < (e + v.head_dim) * es; ++x) inside[size_t(x)] = true;
      }
  for (size_t x = 0; x < b.size(); ++x)
    if (!inside[x] && a.bytes[x] != b[x]) return false;
  return true;
}

namespace {


struct Staged {  // one tensor's memory on the backend
  HostTensor host;
  std::unique_ptr<DeviceBuffer> dev;
  TensorView view;  // on the backend
  explicit Staged(const HostTensor& h, Backend backend) : host(h), view(host.view) {
    if (backend == Backend::cuda) {
      dev = std::make_unique<DeviceBuffer>(host.bytes.size());
      dev->upload(host.bytes.data(), host.bytes.size());
      view.data = dev->data();
    }
  }
  std::vector<uint8_t> fetch() {
    if (!dev) return host.bytes;
    std::vector<uint8_t> out(host.bytes.size());
    dev->download(out.data(), out.size());
    return out;
  }
};

}  // namespace

CaseResult run_case(const Case& c, Backend backend, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const bool has_k = c.k_heads > 0;
  const bool varlen = c.pos == Pos::varlen32 || c.pos == Pos::varlen64;
  // A varlen batch: `batch` sequences of random lengths (empty ones too) packed as [1, tokens].
  const int64_t vb = varlen ? 1 : c.batch, vs = varlen ? int64_t(c.batch) * c.seq : c.seq;
  HostTensor q(c.layout, c.dtype, vb, vs, c.q_heads, c.head_dim);
  q.fill_random(rng);
  HostTensor k(c.layout, c.dtype, vb, vs, has_k ? c.k_heads : 1, c.head_dim);
  k.fill_random(rng);

  // Positions from 1 up: position 0 is the identity rotation, which would hide an unwritten output.
  const int64_t tokens = int64_t(c.batch) * c.seq;
  const bool multimodal = c.mrope_section[0] || c.mrope_section[1] || c.mrope_section[2];
  const int components = multimodal ? 3 : 1;  // multimodal: t, h and w ids, [3, batch, seq]
  std::vector<int32_t> ids32(static_cast<size_t>(tokens * components));
  std::vector<int64_t> ids64(static_cast<size_t>(tokens * components));
  std::uniform_int_distribution<int64_t> upos(1, kMaxPosition - 1);
  const int64_t base = c.position_base;
  for (size_t i = 0; i < ids64.size(); ++i) ids64[i] = base + upos(rng), ids32[i] = int32_t(ids64[i]);
  int64_t offset = base + std::uniform_int_distribution<int64_t>(1, kMaxPosition - c.seq)(rng);
  Positions host_pos = c.pos == Pos::offset ? Positions::contiguous(offset)
                       : c.pos == Pos::ids32 ? Positions::from_ids(ids32.data(), DType::i32)
                                             : Positions::from_ids(ids64.data(), DType::i64);
  if (multimodal) host_pos.components = 3;
  std::vector<int64_t> cu64(size_t(c.batch) + 1, 0), starts64(size_t(c.batch));
  std::vector<int32_t> cu32(cu64.size()), starts32(starts64.size());
  const bool with_starts = varlen && seed % 2 == 0;  // per-sequence starts, or one offset for all
  if (varlen) {
    std::vector<int64_t> cuts = {0, tokens};
    for (int i = 1; i < c.batch; ++i) cuts.push_back(std::uniform_int_distribution<int64_t>(0, tokens)(rng));
    std::sort(cuts.begin(), cuts.end());
    for (size_t i = 0; i < cu64.size(); ++i) cu64[i] = cuts[i], cu32[i] = int32_t(cuts[i]);
    for (size_t i = 0; i < starts64.size(); ++i) {
      const int64_t len = cu64[i + 1] - cu64[i];
      starts64[i] = base + std::uniform_int_distribution<int64_t>(1, kMaxPosition - std::max<int64_t>(len, 1))(rng);
      starts32[i] = int32_t(starts64[i]);
    }
    offset = base + std::uniform_int_distribution<int64_t>(1, kMaxPosition - tokens)(rng);
    const bool w32 = c.pos == Pos::varlen32;
    host_pos = Positions::varlen(w32 ? static_cast<const void*>(cu32.data()) : cu64.data(), w32 ? DType::i32 : DType::i64,
                                 c.batch, !with_starts ? nullptr : w32 ? static_cast<const void*>(starts32.data()) : starts64.data(),
                                 offset);
  }

  // Exact angles: the kernel computes cos/sin from phase steps; the reference from exact angles.
  std::optional<RopeTable> table;
  std::optional<FrequencyTable> freqs;
  ReferenceTable ref_table;
  const AngleMode mode = c.hf_compat ? AngleMode::hf_compat : AngleMode::exact;
  if (c.exact_angles) {
    freqs.emplace(FrequencyTable::from_theta(backend, c.rotary_dim, c.theta));
    ref_table = ReferenceTable::from_frequencies(freqs->inv_freq(), 1.0, int64_t(1) << 32, mode);
  } else {
    table.emplace(backend, kMaxPosition, c.rotary_dim, c.theta, c.table_dtype);
    CosSinTable host_table = table->view();
    host_table.cos = table->host_cos().data();
    host_table.sin = table->host_sin().data();
    ref_table = ReferenceTable::from(host_table);
  }
  const AngleSource angles = c.exact_angles ? AngleSource(freqs->view(mode)) : AngleSource(table->view());
  // Outputs: the inputs themselves in place; poisoned storage of the same layout otherwise (of
  // out_dtype when given).
  const DType out_dtype = c.out_dtype.value_or(c.dtype);
  HostTensor q_out_init = c.in_place ? q : HostTensor(c.layout, out_dtype, vb, vs, c.q_heads, c.head_dim);
  HostTensor k_out_init = c.in_place ? k : HostTensor(c.layout, out_dtype, vb, vs, has_k ? c.k_heads : 1, c.head_dim);
  if (!c.in_place) {
    q_out_init.poison();
    k_out_init.poison();
  }
  RopeOptions layout;
  layout.style = c.style;
  layout.rotary_dim = c.rotary_dim;
  layout.rotary_offset = c.rotary_offset;
  layout.inverse = c.inverse;
  layout.mrope_section = c.mrope_section;
  layout.mrope_interleaved = c.mrope_interleaved;
  if (!c.in_place) layout.q_out = q_out_init.view;
  auto ref_q = reference_rope(q.view, host_pos, ref_table, layout);
  auto ref_k = has_k ? reference_rope(k.view, host_pos, ref_table, layout) : ReferenceResult{};
  Staged sq(q, backend), sk(k, backend);
  Staged sqo(q_out_init, backend), sko(k_out_init, backend);

  std::vector<std::unique_ptr<DeviceBuffer>> dev_copies;
  auto to_device = [&](const void* host, int64_t count) -> const void* {
    if (!host) return nullptr;
    size_t bytes = size_t(count) * size_t(dtype_size(host_pos.ids_dtype));
    dev_copies.push_back(std::make_unique<DeviceBuffer>(bytes));
    dev_copies.back()->upload(host, bytes);
    return dev_copies.back()->data();
  };
  Positions pos = host_pos;
  if (backend == Backend::cuda) {
    pos.ids = to_device(host_pos.ids, tokens * components);
    pos.cu_seqlens = to_device(host_pos.cu_seqlens, c.batch + 1);
    pos.starts = to_device(host_pos.starts, c.batch);
  }

  RopeOptions opt;
  opt.style = c.style;
  opt.rotary_dim = c.rotary_dim;
  opt.backend = backend;
  opt.threads = c.threads;
  opt.vector_width = c.vector_width;
  opt.unroll = c.unroll;
  opt.streaming = c.streaming;
  opt.tokens_per_program = c.tokens;
  opt.inverse = c.inverse;
  opt.rotary_offset = c.rotary_offset;
  opt.mrope_section = c.mrope_section;
  opt.mrope_interleaved = c.mrope_interleaved;
  if (!c.in_place) {
    opt.q_out = sqo.view;
    if (has_k) opt.k_out = sko.view;
  }
  apply_rope(sq.view, has_k ? &sk.view : nullptr, pos, angles, opt);
  if (backend == Backend::cuda) synchronize();

  CaseResult r;
  Staged& qo = c.in_place ? sq : sqo;
  Staged& ko = c.in_place ? sk : sko;
  r.q_out_bytes = qo.fetch();
  r.k_out_bytes = ko.fetch();
  HostTensor q_res = qo.host, k_res = ko.host;
  q_res.bytes = r.q_out_bytes;
  k_res.bytes = r.k_out_bytes;
  q_res.view.data = q_res.bytes.data();
  k_res.view.data = k_res.bytes.data();
  r.q = compare_to_reference(q_res.view, ref_q);
  if (has_k) r.k = compare_to_reference(k_res.view, ref_k);
  r.gaps_untouched = gaps_equal(qo.host, r.q_out_bytes) && gaps_equal(ko.host, r.k_out_bytes);
  // The inputs of an out-of-place call are never written.
  if (!c.in_place && (sq.fetch() != q.bytes || sk.fetch() != k.bytes)) r.gaps_untouched = false;
  return r;
}

std::vector<Case> matrix(RopeStyle style, DType dtype) {
  std::vector<Case> cases;
  const Layout layouts[] = {Layout::bshd, Layout::sbhd, Layout::bhsd};
  const int heads[][2] = {{32, 8}, {1, 1}, {4, 0}};
  int n = 0;
  for (int d : {64, 80, 128, 256})
    for (bool half : {false, true})
      for (const auto& h : heads)
        for (bool in_place : {true, false})
          for (bool ids : {false, true})
            for (Layout layout : layouts) {
              Case c;
              c.style = style;
              c.dtype = dtype;
              c.head_dim = d;
              c.rotary_dim = half ? d / 2 : d;
              c.q_heads = h[0];
              c.k_heads = h[1];
              c.in_place = in_place;
              c.pos = !ids ? Pos::offset : (n % 2 ? Pos::ids64 : Pos::ids32);
              c.layout = layout;
              c.table_dtype = n % 5 == 4 ? DType::bf16 : DType::f32;
              c.tokens = n % 4 == 1 ? 2 : n % 4 == 3 ? 4 : 0;  // several tokens per program, the last one short
              cases.push_back(c);
              ++n;
            }
  return cases;
}

void check_case(const Case& c, Backend backend, uint64_t seed) {
  INFO(c.describe());
  auto r = run_case(c, backend, seed);
  CHECK_MESSAGE(r.q.ok(), "q: " << r.q.mismatches << " of " << r.q.checked << " wrong, first " << r.q.first_mismatch);
  if (c.k_heads)
    CHECK_MESSAGE(r.k.ok(), "k: " << r.k.mismatches << " of " << r.k.checked << " wrong, first " << r.k.first_mismatch);
  CHECK_MESSAGE(r.gaps_untouched, "memory outside the output view (or an out-of-place input) was written");
}

void check_matrix(RopeStyle style, DType dtype, Backend backend) {
  auto cases = matrix(style, dtype);
  uint64_t seed = 1000;
  for (const auto& c : cases) check_case(c, backend, seed++);
  MESSAGE(cases.size() << " cases on the " << std::string(backend == Backend::cuda ? "GPU" : "host backend"));
}

void* Placement::place(const void* data, size_t bytes) {
  if (backend_ == Backend::host) return const_cast<void*>(data);
  buffers_.push_back(std::make_unique<DeviceBuffer>(bytes));
  buffers_.back()->upload(data, bytes);
  return buffers_.back()->data();
}

void Placement::fetch(const void* placed, void* host, size_t bytes) {
  if (backend_ == Backend::host) return;
  synchronize();
  for (auto& b : buffers_)
    if (b->data() == placed) b->download(host, bytes);
}

int check_frequency_sets(Backend backend) {
  const int64_t H = 4, D = 64, P = D / 2;
  std::mt19937_64 rng(4242);
  // LongRoPE-like: the same base frequencies divided by per-pair factors, a factor per set.
  std::vector<double> base(static_cast<size_t>(P)), shorter(base), longer(base);
  for (int64_t i = 0; i < P; ++i) {
    base[size_t(i)] = std::pow(10000.0, -2.0 * double(i) / double(D));
    shorter[size_t(i)] = base[size_t(i)] / (1.0 + 0.05 * double(i));
    longer[size_t(i)] = base[size_t(i)] / (1.0 + 0.9 * double(i));
  }
  FrequencyTable sets(backend, {shorter, longer}, {1.0, 1.19});
  Placement placed(backend);
  auto place = [&](const void* data, size_t bytes) { return placed.place(data, bytes); };
  int checked = 0;
  for (bool varlen : {true, false})
    for (AngleMode mode : {AngleMode::exact, AngleMode::hf_compat}) {
      // varlen: 5 packed sequences (one empty); dense: 3 rows of 6 tokens.
      const std::vector<int32_t> cu = {0, 4, 4, 11, 12, 20};
      const int64_t seqs = varlen ? 5 : 3, B = varlen ? 1 : 3, S = varlen ? 20 : 6;
      std::vector<int32_t> index(static_cast<size_t>(seqs));
      for (int64_t i = 0; i < seqs; ++i) index[size_t(i)] = int32_t((i * 7 + (varlen ? 1 : 0)) % 3 == 0 ? 0 : 1);
      std::vector<int32_t> starts(static_cast<size_t>(seqs));
      for (auto& v : starts) v = int32_t(rng() % 100000);
      std::vector<float> x(static_cast<size_t>(B * S * H * D));
      for (auto& v : x) v = std::uniform_real_distribution<float>(-2, 2)(rng);
      std::vector<float> y(x.size(), std::numeric_limits<float>::quiet_NaN());
      Frequencies f = sets.view(mode);
      f.set_index = place(index.data(), index.size() * 4);
      Positions host_pos = varlen ? Positions::varlen(cu.data(), DType::i32, seqs, starts.data()) : Positions::contiguous(17);
      Positions pos = host_pos;
      if (varlen) pos.cu_seqlens = place(cu.data(), cu.size() * 4), pos.starts = place(starts.data(), starts.size() * 4);
      RopeOptions opt;
      opt.backend = backend;
      opt.tokens_per_program = varlen ? 4 : 2;  // tokens of different sequences (and sets) share a program
      opt.q_out = TensorView::bshd(place(y.data(), y.size() * 4), DType::f32, B, S, H, D);
      const TensorView xv = TensorView::bshd(place(x.data(), x.size() * 4), DType::f32, B, S, H, D);
      apply_rope(xv, nullptr, pos, f, opt);
      placed.fetch(opt.q_out->data, y.data(), y.size() * 4);
      // Each sequence's tokens again, with its set alone (host backend), against the fp64 reference.
      for (int64_t i = 0; i < seqs; ++i) {
        const int64_t first = varlen ? cu[size_t(i)] : i * S, n = varlen ? cu[size_t(i) + 1] - first : S;
        if (n == 0) continue;
        FrequencyTable alone(Backend::host, std::vector<std::vector<double>>{index[size_t(i)] ? longer : shorter},
                             {index[size_t(i)] ? 1.19 : 1.0});
        std::vector<float> xs(x.begin() + first * H * D, x.begin() + (first + n) * H * D), ys(xs.size());
        RopeOptions o;
        o.backend = Backend::host;
        o.q_out = TensorView::bshd(ys.data(), DType::f32, 1, n, H, D);
        const Positions p = Positions::contiguous(varlen ? starts[size_t(i)] : 17);
        const TensorView xsv = TensorView::bshd(xs.data(), DType::f32, 1, n, H, D);
        apply_rope(xsv, nullptr, p, alone.view(mode), o);
        const auto ref = reference_rope(xsv, p, ReferenceTable::from_frequencies(alone.inv_freq(), alone.attention_factors()[0],
                                                                                 int64_t(1) << 32, mode),
                                        RopeStyle::neox, D);
        INFO((varlen ? "varlen" : "dense") << (mode == AngleMode::exact ? " exact" : " hf_compat") << " sequence " << i
                                           << " set " << index[size_t(i)]);
        const auto cmp = compare_to_reference(*o.q_out, ref);
        CHECK_MESSAGE(cmp.ok(), cmp.first_mismatch);
        CHECK(std::memcmp(ys.data(), y.data() + first * H * D, ys.size() * 4) == 0);
        ++checked;
      }
    }
  return checked;
}

std::vector<LaneGroup> lane_groups(int threads, int lanes) {
  if (lanes == 0) lanes = threads;
  std::vector<LaneGroup> groups;
  if ((lanes & (lanes - 1)) == 0) {
    for (int t = 0; t < threads; t += lanes) groups.push_back({t, lanes, false});
    return groups;
  }
  const int warp = std::min(threads, 32);
  for (int w = 0; w < threads; w += warp) {
    for (int g = 0; g + lanes <= warp; g += lanes) groups.push_back({w + g, lanes, false});
    for (int t = warp / lanes * lanes; t < warp; ++t) groups.push_back({w + t, 1, true});
  }
  return groups;
}

}  // namespace ropejit::test
