#include "ops/rope/spec.hpp"

#include <fmt/format.h>
#include <functional>

#include <algorithm>
#include <numeric>

namespace ropejit {

namespace {
bool is_pow2(int v) { return v > 0 && (v & (v - 1)) == 0; }
const char* style_name(RopeStyle s) { return s == RopeStyle::neox ? "neox" : "gptj"; }
const char* positions_name(PositionKind p) {
  switch (p) {
    case PositionKind::offset: return "offset";
    case PositionKind::ids_i32: return "ids32";
    case PositionKind::ids_i64: return "ids64";
    case PositionKind::varlen_i32: return "varlen32";
    case PositionKind::varlen_i64: return "varlen64";
  }
  return "?";
}
}  // namespace

void RopeSpec::validate() const {
  if (head_dim <= 0 || head_dim % 2 || head_dim > 512)
    throw Error(fmt::format("head_dim {} is not supported: it must be even, between 2 and 512", head_dim));
  if (rotary_dim <= 0 || rotary_dim % 2)
    throw Error(fmt::format("rotary_dim {} is not supported: it must be even and positive", rotary_dim));
  if (rotary_offset < 0 || rotary_dim > head_dim - rotary_offset)
    throw Error(fmt::format("rotary_dim {} from rotary_offset {} does not fit head_dim {}", rotary_dim, rotary_offset,
                            head_dim));
  if (!is_float(dtype))
    throw Error(fmt::format("q/k dtype {} is not supported: use f32, f16 or bf16", dtype_name(dtype)));
  if (table_dtype != DType::f32 && table_dtype != DType::bf16)
    throw Error(fmt::format("cos/sin table dtype {} is not supported: use f32 or bf16", dtype_name(table_dtype)));
  if (q_heads <= 0 || q_heads > 4096) throw Error(fmt::format("q heads {} must be from 1 to 4096", q_heads));
  if (k_heads < 0 || k_heads > 4096) throw Error(fmt::format("k heads {} must be from 0 to 4096", k_heads));
  const bool varlen = positions == PositionKind::varlen_i32 || positions == PositionKind::varlen_i64;
  if (int(positions) > int(PositionKind::varlen_i64)) throw Error(fmt::format("position kind {} is not known", int(positions)));
  if (varlen ? varlen_depth < 1 || varlen_depth > 32 : varlen_depth != 0 || varlen_starts)
    throw Error(fmt::format("varlen search depth {} must be from 1 to 32 with varlen positions, else 0", varlen_depth));
  if (angles != AngleMode::table && angles != AngleMode::exact && angles != AngleMode::hf_compat)
    throw Error(fmt::format("angle mode {} is neither table, exact nor hf_compat", int(angles)));
  if (angles != AngleMode::table && table_dtype != DType::f32)
    throw Error("in-kernel angles are computed in f32: table_dtype must be f32");
  if (frequency_sets && angles == AngleMode::table)
    throw Error("frequency sets are chosen per sequence for in-kernel angles only");
  if (out_dtype && (!is_float(*out_dtype) || in_place || *out_dtype == dtype))
    throw Error(fmt::format("output dtype {} must be a float dtype other than q's, and only out of place",
                            dtype_name(*out_dtype)));
  if (multimodal()) {
    int sum = 0;
    for (int v : mrope_section) {
      if (v < 0) throw Error(fmt::format("mrope_section has a negative count {}", v));
      sum += v;
    }
    if (sum != pairs())
      throw Error(fmt::format("mrope_section adds up to {} pairs, but rotary_dim / 2 is {}", sum, pairs()));
    if (positions != PositionKind::ids_i32 && positions != PositionKind::ids_i64)
      throw Error("multimodal RoPE takes its three position ids per token from ids (Positions::multimodal)");
  } else if (mrope_interleaved) {
    throw Error("mrope_interleaved without mrope_section");
  }
}

std::string KernelConfig::key() const {
  return fmt::format("t{}.w{}.u{}{}{}", threads, vector_width, unroll, streaming ? ".cs" : "",
                     tokens > 1 ? fmt::format(".tok{}", tokens) : "");
}

std::string RopeSpec::key() const {
  // Fields past the first ones appear only when they differ from their default, so keys of the
  // common specs stay short and stable.
  std::string extra;
  if (rotary_offset) extra += fmt::format(".o{}", rotary_offset);
  if (frequency_sets) extra += ".sets";
  if (out_dtype) extra += fmt::format(".out{}", dtype_name(*out_dtype));
  if (multimodal())
    extra += fmt::format(".mrope{}{}.{}.{}", mrope_interleaved ? "i" : "", mrope_section[0], mrope_section[1],
                         mrope_section[2]);
  return fmt::format("rope.{}.d{}.r{}.{}.tab{}.hq{}.hk{}.{}.{}{}{}{}{}", style_name(style), head_dim, rotary_dim,
                     dtype_name(dtype), dtype_name(table_dtype), q_heads, k_heads, in_place ? "inplace" : "outofplace",
                     positions_name(positions), inverse ? ".inverse" : "",
                     angles == AngleMode::exact       ? ".exact"
                     : angles == AngleMode::hf_compat ? ".hfcompat"
                                                      : "",
                     varlen_depth ? fmt::format(".s{}{}", varlen_depth, varlen_starts ? ".starts" : "") : "", extra);
}


namespace rope {

int max_vector_width(const RopeSpec& spec) {
  int w = 16 / dtype_size(spec.dtype);  // a wider output (bf16 in, f32 out) stores in two 16-byte halves
  while (spec.pairs() % w || spec.rotary_offset % w) w /= 2;
  return w;
}

int lanes_per_head(const RopeSpec& spec, int width, bool norm) {
  int chunks = spec.pairs() / width;
  if (!norm) return chunks;
  int lanes = 1;
  while (lanes < chunks) lanes *= 2;
  return lanes;
}

Mapping mapping(const RopeSpec& spec, const LaunchConfig& config, bool norm) {
  Mapping m{};
  m.pairs = spec.pairs();
  m.width = config.vector_width;
  m.chunks = m.pairs / m.width;
  m.lanes = lanes_per_head(spec, m.width, norm);
  m.groups = std::max(1, config.threads / m.lanes);
  m.pass_width = 0;
  m.pass_chunks = 0;
  if (spec.rotary_dim < spec.head_dim && (norm || !spec.in_place)) {
    int g = std::gcd(std::gcd(spec.rotary_dim, spec.head_dim), spec.rotary_offset);
    int w = m.width;
    while (g % w) w /= 2;
    m.pass_width = w;
    m.pass_chunks = (spec.head_dim - spec.rotary_dim) / w;
  }
  return m;
}

void validate_config(const RopeSpec& spec, const LaunchConfig& c, bool norm) {
  const int widest = max_vector_width(spec);
  if (!is_pow2(c.vector_width) || c.vector_width > widest)
    throw Error(fmt::format("vector width {} does not fit {}: it must be a power of two of at most 16 bytes that "
                            "divides rotary_dim/2 = {} and rotary_offset {}",
                            c.vector_width, spec.key(), spec.pairs(), spec.rotary_offset));
  int chunks = lanes_per_head(spec, c.vector_width, norm);
  if (!is_pow2(c.threads) || c.threads > 1024 || c.threads < chunks)
    throw Error(fmt::format("{} threads per program do not fit {}: a power of two from {} to 1024 is needed",
                            c.threads, spec.key(), chunks));
  if (c.unroll < 1 || c.unroll > 16) throw Error(fmt::format("unroll {} is outside 1..16", c.unroll));
  if (c.streaming != 0 && c.streaming != 1) throw Error(fmt::format("streaming {} is neither 0 nor 1", c.streaming));
  if (!is_pow2(c.tokens) || c.tokens > 8 || c.threads * c.tokens > 1024)
    throw Error(fmt::format("{} tokens per program: 1, 2, 4 or 8, with threads x tokens at most 1024 ({} threads)",
                            c.tokens, c.threads));
  // The norm's reductions need every thread of a program (barriers, full-warp shuffles): one token each.
  if (norm && c.tokens != 1) throw Error(fmt::format("{} tokens per program: the fused QK-norm op takes 1", c.tokens));
}

LaunchConfig heuristic_config(const RopeSpec& spec, int width_cap, double bytes_moved, int64_t l2_bytes, bool norm) {
  LaunchConfig c;
  c.vector_width = std::min(max_vector_width(spec), std::max(1, width_cap));
  // In-kernel angles: every head group of a program computes its chunk's sin and cos again, so
  // narrower chunks (more lanes per head, fewer groups) and four heads per thread share that work.
  // H100 sweep, Llama-3-8B at 16K tokens (ropejit-tune --angles exact,hf_compat): t256.w2.u4 was
  // best for both (95.9% and 95.8% of copy) where the table path's shape t256.w8.u2.cs gave 94.6%
  // and 70.4%.
  const bool in_kernel = spec.angles != AngleMode::table && !norm;
  if (in_kernel) c.vector_width = std::min(c.vector_width, 2);
  int chunks = lanes_per_head(spec, c.vector_width, norm);
  // About one q head per thread, up to 256 threads: on the H100 the sweeps (docs/tune-h100.txt) put
  // 256-512 threads with one or two heads per thread ahead of fewer threads walking more heads
  // (96% vs 93.5% of copy bandwidth at 16K tokens for Llama-3-8B).
  int threads = 32;
  // The norm's kernels load the next batch while reducing this one. In the H100 sweeps (ropejit-tune
  // --op qk_norm_rope, 16K tokens) two q heads per thread taken together, then the k heads, were
  // best where the lanes fill a power of two (d128 32/8 and 32/4: t128.w8.u2.cs, 96.9% and 96.3%);
  // with padded lanes four were (d96 32/8: t64.w8.u4.cs 93.3%, t128.w8.u2.cs 90.6%).
  const bool padded = chunks > spec.pairs() / c.vector_width;
  const int heads_per_group = in_kernel ? 4 : !norm ? 1 : padded ? 4 : 2;
  while (threads < chunks * ((spec.q_heads + heads_per_group - 1) / heads_per_group) && threads < 256) threads *= 2;
  while (threads < chunks) threads *= 2;
  c.threads = std::min(threads, 1024);
  int g = std::max(1, c.threads / chunks);
  int per_thread = (spec.q_heads + g - 1) / g + (spec.k_heads + g - 1) / g;
  c.unroll = std::clamp(per_thread, 1, norm || in_kernel ? heads_per_group : 8);
  // Evict-first (.cs) 16-byte accesses: in the H100 sweeps (docs/tune-h100.txt) they gained 0.6-2
  // points of copy bandwidth for every shape moving (reads plus writes) up to ~12x the L2 (up to 16K
  // tokens of Llama-3-8B) and lost 0.1-0.4 from ~13x on.
  c.streaming = l2_bytes > 0 && c.vector_width * dtype_size(spec.dtype) == 16 && bytes_moved <= 12.5 * double(l2_bytes);
  return c;
}

size_t hash_combine(size_t seed, size_t v) { return seed ^ (v + 0x9e3779b97f4a7c15ull + (seed << 6) + (seed >> 2)); }

size_t hash_value(const RopeSpec& s) {
  size_t h = 0;
  for (int v : {s.head_dim, s.rotary_dim, int(s.style), int(s.dtype), int(s.table_dtype), s.q_heads, s.k_heads,
                int(s.in_place), int(s.positions), int(s.inverse), int(s.angles), s.varlen_depth, int(s.varlen_starts),
                s.rotary_offset, s.out_dtype ? int(*s.out_dtype) + 1 : 0, s.mrope_section[0], s.mrope_section[1],
                s.mrope_section[2], int(s.mrope_interleaved), int(s.frequency_sets)})
    h = hash_combine(h, std::hash<int>()(v));
  return h;
}

size_t hash_value(const LaunchConfig& c) {
  return hash_combine(hash_combine(hash_combine(std::hash<int>()(c.threads), std::hash<int>()(c.vector_width)),
                                   std::hash<int>()(c.unroll)),
                      std::hash<int>()(c.streaming * 16 + c.tokens));
}

}  // namespace rope
}  // namespace ropejit
