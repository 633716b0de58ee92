// The RoPE scaling variants of transformers' modeling_rope_utils.py in fp64, in transformers'
// operation order, so that they differ from its fp32 values by fp32 rounding only.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numbers>

#include "ropejit/model.hpp"

namespace ropejit {

namespace {

void check(bool ok, const char* function, const std::string& what) {
  if (!ok) throw Error(fmt::format("{}: {}", function, what));
}

void check_dim_theta(const char* function, int64_t rotary_dim, double theta) {
  check(rotary_dim >= 2 && rotary_dim % 2 == 0 && rotary_dim <= (int64_t(1) << 20), function,
        fmt::format("rotary_dim {} must be even and in [2, 2^20]", rotary_dim));
  check(std::isfinite(theta) && theta > 1, function, fmt::format("theta {} must be finite and greater than 1", theta));
}

void check_factor(const char* function, double factor) {
  check(std::isfinite(factor) && factor > 0, function, fmt::format("factor {} must be finite and positive", factor));
}

// theta^(2i / d): transformers' `base ** (arange(0, dim, 2) / dim)`.
double wavelength_base(double theta, int64_t i, int64_t rotary_dim) {
  return std::pow(theta, double(2 * i) / double(rotary_dim));
}

}  // namespace

const char* rope_scaling_name(RopeScaling scaling) {
  switch (scaling) {
    case RopeScaling::none: return "default";
    case RopeScaling::linear: return "linear";
    case RopeScaling::dynamic: return "dynamic";
    case RopeScaling::yarn: return "yarn";
    case RopeScaling::llama3: return "llama3";
    case RopeScaling::longrope: return "longrope";
  }
  return "unknown";
}

RopeFrequencies default_frequencies(int64_t rotary_dim, double theta) {
  check_dim_theta("default_frequencies", rotary_dim, theta);
  RopeFrequencies f;
  f.inv_freq.resize(size_t(rotary_dim / 2));
  for (int64_t i = 0; i < rotary_dim / 2; ++i) f.inv_freq[size_t(i)] = 1.0 / wavelength_base(theta, i, rotary_dim);
  return f;
}

RopeFrequencies linear_frequencies(int64_t rotary_dim, double theta, double factor) {
  check_factor("linear_frequencies", factor);
  RopeFrequencies f = default_frequencies(rotary_dim, theta);
  for (double& v : f.inv_freq) v /= factor;
  return f;
}

RopeFrequencies dynamic_frequencies(int64_t rotary_dim, double theta, double factor, int64_t max_position_embeddings,
                                    int64_t seq_len) {
  const char* fn = "dynamic_frequencies";
  check_dim_theta(fn, rotary_dim, theta);
  check_factor(fn, factor);
  check(rotary_dim > 2, fn, fmt::format("rotary_dim {} must be above 2 (the exponent is d / (d - 2))", rotary_dim));
  check(max_position_embeddings > 0, fn, "max_position_embeddings must be positive");
  check(seq_len >= 0, fn, fmt::format("seq_len {} must not be negative", seq_len));
  const double d = double(rotary_dim), s = double(std::max(seq_len, max_position_embeddings));
  const double base = theta * std::pow(factor * s / double(max_position_embeddings) - (factor - 1), d / (d - 2));
  check(std::isfinite(base), fn, fmt::format("the NTK base overflows at seq_len {}", seq_len));
  return default_frequencies(rotary_dim, base);
}

double yarn_get_mscale(double scale, double mscale) {
  if (scale <= 1) return 1.0;
  return 0.1 * mscale * std::log(scale) + 1.0;
}

double yarn_attention_factor(double factor, double mscale, double mscale_all_dim) {
  if (mscale != 0 && mscale_all_dim != 0) return yarn_get_mscale(factor, mscale) / yarn_get_mscale(factor, mscale_all_dim);
  return yarn_get_mscale(factor);
}

RopeFrequencies yarn_frequencies(int64_t rotary_dim, double theta, double factor,
                                 int64_t original_max_position_embeddings, double beta_fast, double beta_slow,
                                 bool truncate, double attention_factor) {
  const char* fn = "yarn_frequencies";
  check_dim_theta(fn, rotary_dim, theta);
  check_factor(fn, factor);
  check(original_max_position_embeddings > 0, fn, "original_max_position_embeddings must be positive");
  check(std::isfinite(beta_fast) && beta_fast > 0 && std::isfinite(beta_slow) && beta_slow > 0, fn,
        "beta_fast and beta_slow must be finite and positive");
  const double d = double(rotary_dim), orig = double(original_max_position_embeddings);
  // The dim (of d) at which a wavelength makes `rotations` turns in the original context.
  auto correction_dim = [&](double rotations) {
    return (d * std::log(orig / (rotations * 2 * std::numbers::pi))) / (2 * std::log(theta));
  };
  double low = correction_dim(beta_fast), high = correction_dim(beta_slow);
  if (truncate) low = std::floor(low), high = std::ceil(high);
  low = std::max(low, 0.0), high = std::min(high, d - 1);
  if (low == high) high += 0.001;  // transformers' guard against a zero-width ramp
  RopeFrequencies f;
  f.attention_factor = attention_factor;
  f.inv_freq.resize(size_t(rotary_dim / 2));
  for (int64_t i = 0; i < rotary_dim / 2; ++i) {
    const double pos_freq = wavelength_base(theta, i, rotary_dim);
    const double extrapolation = 1.0 / pos_freq, interpolation = 1.0 / (factor * pos_freq);
    const double ramp = std::clamp((double(i) - low) / (high - low), 0.0, 1.0);
    const double extrapolation_factor = 1 - ramp;
    f.inv_freq[size_t(i)] = interpolation * (1 - extrapolation_factor) + extrapolation * extrapolation_factor;
  }
  return f;
}

RopeFrequencies llama3_frequencies(int64_t rotary_dim, double theta, double factor, double low_freq_factor,
                                   double high_freq_factor, int64_t original_max_position_embeddings) {
  const char* fn = "llama3_frequencies";
  check_factor(fn, factor);
  check(std::isfinite(low_freq_factor) && low_freq_factor > 0 && std::isfinite(high_freq_factor) &&
            high_freq_factor > low_freq_factor,
        fn, fmt::format("need 0 < low_freq_factor ({}) < high_freq_factor ({})", low_freq_factor, high_freq_factor));
  check(original_max_position_embeddings > 0, fn, "original_max_position_embeddings must be positive");
  RopeFrequencies f = default_frequencies(rotary_dim, theta);
  const double old_context = double(original_max_position_embeddings);
  const double low_freq_wavelen = old_context / low_freq_factor, high_freq_wavelen = old_context / high_freq_factor;
  for (double& inv : f.inv_freq) {
    const double wavelen = 2 * std::numbers::pi / inv;
    if (wavelen > low_freq_wavelen) {
      inv = inv / factor;
    } else if (!(wavelen < high_freq_wavelen)) {
      const double smooth = (old_context / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
      inv = (1 - smooth) * inv / factor + smooth * inv;
    }
  }
  return f;
}

double longrope_attention_factor(double factor, int64_t original_max_position_embeddings) {
  if (factor <= 1.0) return 1.0;
  return std::sqrt(1 + std::log(factor) / std::log(double(original_max_position_embeddings)));
}

RopeFrequencies longrope_frequencies(int64_t rotary_dim, double theta, const std::vector<double>& ext_factors,
                                     double attention_factor) {
  const char* fn = "longrope_frequencies";
  check_dim_theta(fn, rotary_dim, theta);
  check(int64_t(ext_factors.size()) == rotary_dim / 2, fn,
        fmt::format("{} factors for rotary_dim {} (need {})", ext_factors.size(), rotary_dim, rotary_dim / 2));
  RopeFrequencies f;
  f.attention_factor = attention_factor;
  f.inv_freq.resize(ext_factors.size());
  for (int64_t i = 0; i < rotary_dim / 2; ++i) {
    const double ext = ext_factors[size_t(i)];
    check(std::isfinite(ext) && ext > 0, fn, fmt::format("factor {} is {}: must be finite and positive", i, ext));
    f.inv_freq[size_t(i)] = 1.0 / (ext * wavelength_base(theta, i, rotary_dim));
  }
  return f;
}

RopeFrequencies ModelRope::frequencies(int64_t seq_len) const {
  if (seq_len < 0) throw Error(fmt::format("ModelRope::frequencies: seq_len {} must not be negative", seq_len));
  switch (scaling) {
    case RopeScaling::none: return default_frequencies(rotary_dim, theta);
    case RopeScaling::linear: return linear_frequencies(rotary_dim, theta, factor);
    case RopeScaling::dynamic: return dynamic_frequencies(rotary_dim, theta, factor, max_position_embeddings, seq_len);
    case RopeScaling::yarn:
      return yarn_frequencies(rotary_dim, theta, factor, original_max_position_embeddings, beta_fast, beta_slow,
                              truncate, attention_factor.value_or(yarn_attention_factor(factor, mscale, mscale_all_dim)));
    case RopeScaling::llama3:
      return llama3_frequencies(rotary_dim, theta, factor, low_freq_factor, high_freq_factor,
                                original_max_position_embeddings);
    case RopeScaling::longrope:
      return longrope_frequencies(rotary_dim, theta, seq_len > original_max_position_embeddings ? long_factor : short_factor,
                                  attention_factor.value_or(longrope_attention_factor(factor, original_max_position_embeddings)));
  }
  throw Error("ModelRope::frequencies: unknown scaling", ErrorKind::internal);
}

}  // namespace ropejit
