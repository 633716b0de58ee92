// A model's RoPE from its HuggingFace config.json: which dims of each head rotate, in which style, and
// by which frequencies. Every scaling variant of transformers' modeling_rope_utils.py reduces to
// per-pair inverse frequencies plus an attention factor; here they are computed in fp64 with
// transformers' formulas and operation order (transformers itself computes them in fp32).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ropejit/core.hpp"
#include "ropejit/rope.hpp"

namespace ropejit {

// rope_type of the config ("default" and Qwen2-VL's "mrope" are `none`; DeepSeek's yarn is `yarn`
// with mscale / mscale_all_dim; Phi-3's old "su" is `longrope`).
enum class RopeScaling : uint8_t { none, linear, dynamic, yarn, llama3, longrope };
const char* rope_scaling_name(RopeScaling scaling);  // as rope_type spells it; none is "default"

// One set of frequencies: what the kernels rotate by.
struct RopeFrequencies {
  std::vector<double> inv_freq;   // rotary_dim / 2 values, radians per position
  double attention_factor = 1.0;  // multiplies cos and sin
};

// Everything needed to rotate a model's q and k, from its config.
struct ModelRope {
  // The rotated dims are [rotary_offset, rotary_offset + rotary_dim) of each head: the first
  // rotary_dim (partial_rotary_factor, rotary_pct, rotary_dim) or, for DeepSeek's MLA, the last
  // qk_rope_head_dim of a qk_nope_head_dim + qk_rope_head_dim head.
  int64_t head_dim = 0, rotary_dim = 0, rotary_offset = 0;
  int64_t q_heads = 0, kv_heads = 0;
  RopeStyle style = RopeStyle::neox;
  double theta = 10000.0;
  RopeScaling scaling = RopeScaling::none;
  // linear, dynamic, yarn, llama3: as given. longrope: as given, else max / original max (it only
  // sets the default attention factor).
  double factor = 1.0;
  // original_max_position_embeddings: a top-level value wins over one in rope_scaling (Phi-3), as
  // transformers v5 does; it defaults to max_position_embeddings.
  int64_t max_position_embeddings = 0, original_max_position_embeddings = 0;
  // yarn / llama3 parameters as read; absent ones (and yarn's beta 0, as transformers' `or`) take
  // these defaults. yarn's attention factor uses mscale / mscale_all_dim only when both are non-zero.
  double beta_fast = 32, beta_slow = 1, mscale = 0, mscale_all_dim = 0, low_freq_factor = 1, high_freq_factor = 4;
  bool truncate = true;
  std::vector<double> short_factor, long_factor;  // longrope, rotary_dim / 2 each
  std::optional<double> attention_factor;         // yarn, longrope: as given in the config
  // Multimodal RoPE: pairs per position component (t, h, w), adding up to rotary_dim / 2; empty when
  // not mrope. Sectioned (Qwen2-VL, Qwen2.5-VL): pairs [0, s0) take t's position, the next s1 h's,
  // the last s2 w's. Interleaved (Qwen3-VL): pair j takes h's when j % 3 == 1 and j < 3 s1, w's when
  // j % 3 == 2 and j < 3 s2, else t's.
  std::vector<int64_t> mrope_section;
  bool mrope_interleaved = false;

  // The frequencies for a call whose longest sequence is `seq_len` tokens (max position + 1).
  // dynamic: the NTK base for max(seq_len, max_position_embeddings) (so the default frequencies up to
  // max_position_embeddings, as transformers, which grows the base past max_position_embeddings;
  // transformers keeps the grown base for later shorter calls above it, this is stateless).
  // longrope: long_factor when seq_len > original_max_position_embeddings, else short_factor. The
  // others ignore seq_len. Throws Error for seq_len < 0 or fields that do not fit together.
  RopeFrequencies frequencies(int64_t seq_len = 0) const;

  // What the kernels take. The layout: style, rotary_dim, rotary_offset and the multimodal sections
  // (backend, outputs and configs are the caller's to set).
  RopeOptions options() const;
  // The frequencies for calls up to `seq_len` tokens, uploaded for in-kernel angles.
  FrequencyTable frequency_table(Backend backend, int64_t seq_len = 0, int device = 0) const;
  // Every set a batch may need, to choose per sequence (Frequencies::set_index): LongRoPE's short
  // (set 0) and long (set 1) factors; one set for the others. set_for(n) is the set of a sequence
  // whose last position is n - 1 (LongRoPE: long past original_max_position_embeddings).
  FrequencyTable frequency_sets(Backend backend, int device = 0) const;
  int32_t set_for(int64_t seq_len) const;
};

// The building blocks (ModelRope::frequencies calls these). Each checks its arguments (Error).

// theta^(-2i / rotary_dim), i < rotary_dim / 2; attention factor 1.
RopeFrequencies default_frequencies(int64_t rotary_dim, double theta);
// default / factor (position interpolation).
RopeFrequencies linear_frequencies(int64_t rotary_dim, double theta, double factor);
// Dynamic NTK: default frequencies of base theta * (factor s / max - (factor - 1))^(d / (d - 2)),
// s = max(seq_len, max_position_embeddings).
RopeFrequencies dynamic_frequencies(int64_t rotary_dim, double theta, double factor, int64_t max_position_embeddings,
                                    int64_t seq_len);
// YaRN's get_mscale: 1 for scale <= 1, else 0.1 mscale ln(scale) + 1.
double yarn_get_mscale(double scale, double mscale = 1.0);
// YaRN's default attention factor: get_mscale(factor, mscale) / get_mscale(factor, mscale_all_dim)
// when both are non-zero (DeepSeek), else get_mscale(factor).
double yarn_attention_factor(double factor, double mscale, double mscale_all_dim);
// YaRN: interpolated (default / factor) below the correction range of beta_slow .. beta_fast
// rotations in original_max_position_embeddings, extrapolated (default) above it, a linear ramp
// between; `truncate` rounds the range out to whole dims.
RopeFrequencies yarn_frequencies(int64_t rotary_dim, double theta, double factor,
                                 int64_t original_max_position_embeddings, double beta_fast, double beta_slow,
                                 bool truncate, double attention_factor);
// Llama 3.1: wavelengths above original / low_freq_factor divided by factor, below original /
// high_freq_factor kept, smoothly mixed between.
RopeFrequencies llama3_frequencies(int64_t rotary_dim, double theta, double factor, double low_freq_factor,
                                   double high_freq_factor, int64_t original_max_position_embeddings);
// LongRoPE's default attention factor: 1 for factor <= 1, else sqrt(1 + ln(factor) / ln(original)).
double longrope_attention_factor(double factor, int64_t original_max_position_embeddings);
// LongRoPE: default / ext_factors[i] (the short or the long set, rotary_dim / 2 values).
RopeFrequencies longrope_frequencies(int64_t rotary_dim, double theta, const std::vector<double>& ext_factors,
                                     double attention_factor);

// Reads a model's config.json: `path_or_json` is a file path, or JSON text when its first non-blank
// character is '{'. Multimodal configs are read from their text_config where they have one (a field
// it lacks is taken from the top level). Throws Error (invalid_argument; io for an unreadable file;
// unsupported for per-layer rope_parameters or rope_type "proportional") whose message names the
// field: `config.json: rope_scaling.factor: ...`.
ModelRope rope_from_config(const std::string& path_or_json);

}  // namespace ropejit
