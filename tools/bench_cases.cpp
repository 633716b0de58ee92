#include "bench_cases.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>

namespace ropejit::bench {

namespace {
DType parse_dtype(const std::string& s) {
  if (s == "bf16") return DType::bf16;
  if (s == "f16" || s == "fp16") return DType::f16;
  if (s == "f32" || s == "fp32") return DType::f32;
  throw Error("unknown dtype " + s + " (bf16, f16, f32)");
}
RopeStyle parse_style(const std::string& s) {
  if (s == "neox") return RopeStyle::neox;
  if (s == "gptj") return RopeStyle::gptj;
  throw Error("unknown style " + s + " (neox, gptj)");
}
// A whole number in [lo, hi], every character a digit (no "32/", no "abc", no overflow).
int parse_count(const std::string& s, const char* what, int lo, int hi) {
  int64_t v = 0;
  if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos)
    throw Error(fmt::format("--heads: {} '{}' is not a whole number", what, s));
  v = std::stoll(s);
  if (v < lo || v > hi) throw Error(fmt::format("--heads: {} {} is outside [{}, {}]", what, v, lo, hi));
  return int(v);
}

Case with_tokens(Case c, int64_t tokens) {
  c.decode = tokens == 64;
  c.batch = c.decode ? 64 : 1;
  c.seq = c.decode ? 1 : tokens;
  return c;
}
}  // namespace

double Case::bytes() const {
  double elems = double(tokens()) * double(q_heads + k_heads) * head_dim;
  double table_row = exact_angles ? 0 : double(head_dim / 2) * 4 * 2;  // f32 cos and sin (cu_seqlens: tiny)
  double weights = op == "qk_norm_rope" ? 2.0 * head_dim * 4 : 0;
  return 2.0 * elems * dtype_size(dtype) + double(tokens()) * (table_row + (decode ? 4 : 0)) + weights;
}

std::string Case::series() const {
  return fmt::format("{}{} d{} {}/{} {}{}{}{}", op == "rope" ? "" : "qknorm+rope ", dtype_name(dtype), head_dim, q_heads,
                     k_heads, style == RopeStyle::neox ? "neox" : "gptj",
                     !exact_angles ? "" : hf_compat ? " hf_compat" : " exact",
                     varlen_seqs ? fmt::format(" varlen {}", varlen_seqs) : "", l2_resident ? " L2-resident" : "");
}

std::string Case::label() const {
  return fmt::format("{} {}", series(), decode ? fmt::format("decode {}x1", batch) : fmt::format("{}", tokens()));
}

std::vector<Case> default_cases() {
  std::vector<Case> out;
  Case llama;
  for (int64_t t : {64, 512, 1024, 2048, 4096, 16384, 65536}) out.push_back(with_tokens(llama, t));
  Case resident = with_tokens(llama, 1024);  // the same 1K call with its data in the L2
  resident.l2_resident = true;
  out.push_back(resident);
  // Small heads: head_dim 64, 32/8 (Llama-3.2-1B) over chunk sizes, and 32/32 f16 (as torch.compile's
  // Triton kernel was measured).
  for (int64_t t : {1024, 4096}) {
    Case c = llama;
    c.head_dim = 64;
    out.push_back(with_tokens(c, t));
  }
  for (int64_t t : {16384, 65536}) {
    Case c = llama;
    c.head_dim = 64;
    c.q_heads = c.k_heads = 32;
    c.dtype = DType::f16;
    out.push_back(with_tokens(c, t));
  }
  for (int64_t t : {16384, 65536}) {
    for (DType d : {DType::f16, DType::f32}) {
      Case c = llama;
      c.dtype = d;
      out.push_back(with_tokens(c, t));
    }
    for (int hd : {64, 256}) {
      Case c = llama;
      c.head_dim = hd;
      out.push_back(with_tokens(c, t));
    }
    for (auto h : {std::pair{32, 32}, std::pair{64, 8}}) {
      Case c = llama;
      c.q_heads = h.first;
      c.k_heads = h.second;
      out.push_back(with_tokens(c, t));
    }
    Case g = llama;
    g.style = RopeStyle::gptj;
    out.push_back(with_tokens(g, t));
  }
  // In-kernel exact angles (no table read), and varlen batches of 64 equal sequences, against the
  // dense table rows above.
  for (int64_t t : {16384, 65536}) {
    Case c = llama;
    c.exact_angles = true;
    out.push_back(with_tokens(c, t));
    c.hf_compat = true;
    out.push_back(with_tokens(c, t));
    Case v = with_tokens(llama, t);
    v.varlen_seqs = 64;
    out.push_back(v);
  }
  // Fused QK-RMSNorm + RoPE: Qwen3-8B (32/8 d128), Qwen3-30B-A3B (32/4 d128), and an odd head dim.
  for (int64_t t : {16384, 65536})
    for (auto [hq, hk, d] : {std::tuple{32, 8, 128}, std::tuple{32, 4, 128}, std::tuple{32, 8, 96}}) {
      Case c = llama;
      c.op = "qk_norm_rope";
      c.q_heads = hq;
      c.k_heads = hk;
      c.head_dim = d;
      out.push_back(with_tokens(c, t));
    }
  return out;
}

std::vector<Case> cross_cases(const std::vector<std::string>& ops, const std::vector<int64_t>& tokens,
                              const std::vector<std::string>& dtypes,
                              const std::vector<int>& head_dims, const std::vector<std::string>& heads,
                              const std::vector<std::string>& styles) {
  auto or_default = [](auto v, auto d) { return v.empty() ? decltype(v){d} : v; };
  std::vector<Case> out;
  for (const auto& o : or_default(ops, std::string("rope")))
  for (auto t : or_default(tokens, int64_t(16384)))
    for (const auto& d : or_default(dtypes, std::string("bf16")))
      for (auto hd : or_default(head_dims, 128))
        for (const auto& h : or_default(heads, std::string("32/8")))
          for (const auto& s : or_default(styles, std::string("neox"))) {
            Case c;
            c.op = op(o).name;
            c.dtype = parse_dtype(d);
            if (hd < 2 || hd > 512 || hd % 2) throw Error(fmt::format("--head-dim {}: an even number from 2 to 512", hd));
            if (t < 1 || t > (int64_t(1) << 24)) throw Error(fmt::format("--tokens {}: from 1 to 2^24", t));
            c.head_dim = hd;
            auto slash = h.find('/');
            c.q_heads = parse_count(h.substr(0, slash), "q heads", 1, 4096);
            c.k_heads = slash == std::string::npos ? 0 : parse_count(h.substr(slash + 1), "k heads", 0, 4096);
            c.style = parse_style(s);
            out.push_back(with_tokens(c, t));
          }
  return out;
}

std::vector<Case> CaseOptions::cases() const {
  std::vector<Case> out;
  for (const auto& a : angles.empty() ? std::vector<std::string>{"table"} : angles) {
    if (a != "table" && a != "exact" && a != "hf_compat") throw Error("--angles " + a + ": table, exact or hf_compat");
    for (Case c : cross_cases(ops, tokens, dtypes, head_dims, heads, styles)) {
      c.exact_angles = a != "table";
      c.hf_compat = a == "hf_compat";
      c.l2_resident = l2_resident;
      out.push_back(c);
    }
  }
  return out;
}

void CaseOptions::add_to(CLI::App& app) {
  app.add_option("--op", ops, "rope, qk_norm_rope");
  app.add_option("--tokens", tokens, "token counts (64 = a decode step of 64 sequences x 1 token)");
  app.add_option("--dtype", dtypes, "bf16, f16, f32");
  app.add_option("--head-dim", head_dims, "head_dim values");
  app.add_option("--heads", heads, "q/k head counts, e.g. 32/8");
  app.add_option("--style", styles, "neox, gptj");
  app.add_option("--angles", angles,
                 "table (cos/sin read from a table), exact (computed in the kernel), hf_compat (from HF's f32 angles)")
      ->delimiter(',');
  app.add_flag("--l2-resident", l2_resident, "one set of buffers, so calls read the L2 (default: rotated past 4x the L2)");
}

Data::Buffer Data::make(size_t bytes) {
  Buffer b;
  if (backend_ == Backend::host)
    b.host.resize(std::max<size_t>(bytes, 1));
  else
    b.device = DeviceBuffer(bytes);
  return b;
}

Data::Data(const Case& c, int64_t l2_bytes, Backend backend) : c_(c), backend_(backend) {
  const size_t es = size_t(dtype_size(c.dtype));
  const size_t qb = size_t(c.tokens()) * size_t(c.q_heads) * size_t(c.head_dim) * es;
  const size_t kb = size_t(c.tokens()) * size_t(c.k_heads) * size_t(c.head_dim) * es;
  // Enough sets that one pass over them is 4x the L2: every call reads from memory, not cache.
  sets_ = c.l2_resident ? 1 : int(std::clamp<int64_t>((4 * l2_bytes + int64_t(qb + kb) - 1) / int64_t(qb + kb), 1, 1024));
  // Random values (never zeros), copied from one 16 MB block.
  std::vector<uint8_t> block(size_t(16) << 20);
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> u(-2.0, 2.0);
  for (size_t i = 0; i < block.size() / es; ++i) store_from_double(c.dtype, block.data(), int64_t(i), u(rng));
  auto fill = [&](Buffer& b, size_t bytes) {
    for (size_t off = 0; off < bytes; off += block.size()) {
      size_t n = std::min(block.size(), bytes - off);
      if (backend_ == Backend::host)
        std::memcpy(b.host.data() + off, block.data(), n);
      else
        b.device.upload(block.data(), n, off);
    }
  };
  for (int s = 0; s < sets_; ++s) {
    q_.push_back(make(qb));
    fill(q_.back(), qb);
    if (kb) {
      k_.push_back(make(kb));
      fill(k_.back(), kb);
    }
  }
  table_ = std::make_unique<RopeTable>(backend, std::max<int64_t>(c.seq, 4096) + 1, c.head_dim, 500000.0);
  if (c.exact_angles)
    freqs_ = std::make_unique<FrequencyTable>(FrequencyTable::from_theta(backend, c.head_dim, 500000.0));
  std::vector<float> w(size_t(c.head_dim));
  std::uniform_real_distribution<float> uw(0.5f, 1.5f);
  for (auto& x : w) x = uw(rng);
  weights_ = make(w.size() * 4);
  if (backend_ == Backend::host)
    std::memcpy(weights_.host.data(), w.data(), w.size() * 4);
  else
    weights_.device.upload(w.data(), w.size() * 4);
  if (c.varlen_seqs > 0) {
    std::vector<int32_t> cu(size_t(c.varlen_seqs) + 1);
    for (size_t i = 0; i < cu.size(); ++i) cu[i] = int32_t(c.tokens() * int64_t(i) / c.varlen_seqs);
    cu_seqlens_ = make(cu.size() * 4);
    if (backend_ == Backend::host)
      std::memcpy(cu_seqlens_.host.data(), cu.data(), cu.size() * 4);
    else
      cu_seqlens_.device.upload(cu.data(), cu.size() * 4);
  }
  if (c.decode) {
    std::vector<int32_t> ids(size_t(c.tokens()));
    std::uniform_int_distribution<int32_t> p(0, 4095);
    for (auto& i : ids) i = p(rng);
    ids_ = make(ids.size() * 4);
    if (backend_ == Backend::host)
      std::memcpy(ids_.host.data(), ids.data(), ids.size() * 4);
    else
      ids_.device.upload(ids.data(), ids.size() * 4);
  }
}

TensorView Data::q(int set) const {
  return TensorView::bshd(const_cast<Buffer&>(q_[size_t(set)]).data(), c_.dtype, c_.batch, c_.seq, c_.q_heads, c_.head_dim);
}
TensorView Data::k(int set) const {
  return TensorView::bshd(k_.empty() ? nullptr : const_cast<Buffer&>(k_[size_t(set)]).data(), c_.dtype, c_.batch, c_.seq,
                          std::max(1, c_.k_heads), c_.head_dim);
}
Positions Data::positions() const {
  if (c_.varlen_seqs > 0)
    return Positions::varlen(const_cast<Buffer&>(cu_seqlens_).data(), DType::i32, c_.varlen_seqs, nullptr, 1);
  return c_.decode ? Positions::from_ids(const_cast<Buffer&>(ids_).data(), DType::i32) : Positions::contiguous(1);
}

std::vector<uint8_t> Data::read(bool k, int set) const {
  const Buffer& b = (k ? k_ : q_)[size_t(set)];
  if (backend_ == Backend::host) return b.host;
  std::vector<uint8_t> out(b.device.size());
  b.device.download(out.data(), out.size());
  return out;
}

AngleSource Data::angles() const {
  const AngleMode mode = c_.hf_compat ? AngleMode::hf_compat : AngleMode::exact;
  return freqs_ ? AngleSource(freqs_->view(mode)) : AngleSource(table_->view());
}

ReferenceTable Data::reference_table() const {
  return freqs_ ? ReferenceTable::from_frequencies(freqs_->inv_freq(), 1.0, int64_t(1) << 32,
                                                  c_.hf_compat ? AngleMode::hf_compat : AngleMode::exact)
                : ReferenceTable::from(table_->view());
}

QkNorm Data::norm() const {
  void* w = const_cast<Buffer&>(weights_).data();
  return QkNorm{w, w, DType::f32, 1e-6, false};
}

namespace {
const TensorView* k_of(const Case& c, const TensorView& k) { return c.k_heads ? &k : nullptr; }
}  // namespace

const std::vector<Op>& ops() {
  static const std::vector<Op> table = {
      {"rope",
       [](const Case& c, const Data& d, int set, const RopeOptions& o, void* stream) {
         auto q = d.q(set), k = d.k(set);
         apply_rope(q, k_of(c, k), d.positions(), d.angles(), o, stream);
       },
       [](const Case& c, const Data& d, const RopeOptions& o) {
         auto q = d.q(0), k = d.k(0);
         return describe_kernel(q, k_of(c, k), d.positions(), d.angles(), o);
       },
       [](const Case& c, const TensorView& x, const Positions& p, const ReferenceTable& t, const void*) {
         return reference_rope(x, p, t, c.style, c.head_dim);
       }},
      {"qk_norm_rope",
       [](const Case& c, const Data& d, int set, const RopeOptions& o, void* stream) {
         auto q = d.q(set), k = d.k(set);
         apply_qk_norm_rope(q, k_of(c, k), d.positions(), d.angles(), d.norm(), o, stream);
       },
       [](const Case& c, const Data& d, const RopeOptions& o) {
         auto q = d.q(0), k = d.k(0);
         return describe_qk_norm_rope(q, k_of(c, k), d.positions(), d.angles(), d.norm(), o);
       },
       [](const Case& c, const TensorView& x, const Positions& p, const ReferenceTable& t, const void* w) {
         QkNorm n{w, w, DType::f32, 1e-6, false};
         return reference_qk_norm_rope(x, w, n, p, t, c.style, c.head_dim);
       }},
  };
  return table;
}

const Op& op(const std::string& name) {
  for (const auto& o : ops())
    if (o.name == name) return o;
  throw Error("unknown op " + name + " (rope, qk_norm_rope)");
}

Measurement measure(const Case& c, Data& data, const RopeOptions& options, double copy_gbps, int reps,
                    bool with_host_and_graph) {
  Measurement m;
  int next = 0;
  const Op& o = op(c.op);
  auto call = [&](void* stream) { o.run(c, data, next++ % data.sets(), options, stream); };
  m.config = o.describe(c, data, options).config;
  if (options.backend == Backend::host) {  // synchronous: the wall clock of each call
    for (int i = 0; i < 2; ++i) call(nullptr);
    std::vector<double> us;
    for (int i = 0; i < reps; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      call(nullptr);
      us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(us.begin(), us.end());
    m.gpu_us = m.host_us = us[us.size() / 2];
    m.gbps = c.bytes() / (m.gpu_us * 1e-6) / 1e9;
    m.fraction = m.gbps / copy_gbps;
    return m;
  }
  auto ms = time_gpu_ms([&] { call(nullptr); }, 10, reps);
  m.gpu_us = ms[ms.size() / 2] * 1e3;
  m.gbps = c.bytes() / (m.gpu_us * 1e-6) / 1e9;
  m.fraction = m.gbps / copy_gbps;
  if (!with_host_and_graph) return m;
  // Host cost: the calling thread's time per call, the enqueue alone (200 calls never fill the launch
  // queue, so the GPU's pace does not show).
  synchronize();
  const int n = 200;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) call(nullptr);  // nothing else in the loop
  m.host_us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / n;
  synchronize();
  auto g = time_graph_ms([&](void* stream) { call(stream); }, 10, reps);
  m.graph_us = g[g.size() / 2] * 1e3;
  return m;
}

double copy_bandwidth_gbps(Backend backend) {
  if (backend == Backend::host) {
    const size_t bytes = size_t(512) << 20;
    std::vector<uint8_t> a(bytes, 0x3c), b(bytes, 0);
    std::vector<double> s;
    for (int i = 0; i < 5; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      std::memcpy(b.data(), a.data(), bytes);
      s.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(s.begin(), s.end());
    return 2.0 * double(bytes) / s[s.size() / 2] / 1e9;
  }
  const size_t bytes = size_t(1) << 30;
  DeviceBuffer a(bytes), b(bytes);
  a.fill(0x3c);
  auto ms = time_gpu_ms([&] { b.copy_from(a, bytes); }, 3, 30);
  return 2.0 * double(bytes) / (ms[ms.size() / 2] * 1e-3) / 1e9;
}

}  // namespace ropejit::bench
