// Phase steps for in-kernel angles: round(inv_freq / 2pi x 2^64) mod 2^64, in long double (64-bit
// mantissa: a step is within about a unit of its last bit, so at position 2^31 the phase is off by
// less than 2^-32 of a turn).
#include <fmt/format.h>

#include <cmath>

#include "ropejit/device.hpp"
#include "ropejit/rope.hpp"

namespace ropejit {

namespace {
uint64_t phase_step(double inv_freq) {
  const long double two_pi = 6.283185307179586476925286766559005768L;
  long double turns = (long double)inv_freq / two_pi;
  turns -= std::floor(turns);  // whole turns per position change nothing
  long double scaled = std::rint(std::ldexp(turns, 64));
  if (scaled >= std::ldexp(1.0L, 64)) return 0;  // rounded up to a whole turn
  const long double half = std::ldexp(1.0L, 63);
  return scaled >= half ? uint64_t(scaled - half) + (uint64_t(1) << 63) : uint64_t(scaled);
}
}  // namespace

struct FrequencyTable::Impl {
  DeviceBuffer steps, inv_freq;
};

FrequencyTable::FrequencyTable(Backend backend, const std::vector<double>& inv_freq, double attention_factor,
                               int device)
    : inv_freq_(inv_freq) {
  if (inv_freq.empty() || inv_freq.size() > 256)
    throw Error(fmt::format("frequencies: {} inverse frequencies; a rotary_dim of 2 to 512 has 1 to 256", inv_freq.size()));
  for (size_t i = 0; i < inv_freq.size(); ++i)
    if (!std::isfinite(inv_freq[i]) || inv_freq[i] < 0)
      throw Error(fmt::format("frequencies: inv_freq[{}] = {} must be finite and not negative", i, inv_freq[i]));
  if (!std::isfinite(attention_factor) || !(attention_factor > 0) || attention_factor > 1e30)
    throw Error(fmt::format("frequencies: attention_factor {} must be positive and finite", attention_factor));
  if (backend != Backend::cuda && backend != Backend::host)
    throw Error(fmt::format("frequencies: backend {} is neither cuda nor host", int(backend)));
  steps_.resize(inv_freq.size());
  inv_freq_f32_.resize(inv_freq.size());
  for (size_t i = 0; i < inv_freq.size(); ++i) {
    steps_[i] = phase_step(inv_freq[i]);
    inv_freq_f32_[i] = float(inv_freq[i]);  // hf_compat's fp32 frequencies: rounded once
  }
  view_.rotary_dim = int64_t(inv_freq.size()) * 2;
  view_.attention_factor = float(attention_factor);
  if (backend == Backend::host) {
    view_.phase_steps = steps_.data();
    view_.inv_freq = inv_freq_f32_.data();
    return;
  }
  impl_ = std::make_unique<Impl>(Impl{DeviceBuffer(steps_.size() * 8, device), DeviceBuffer(steps_.size() * 4, device)});
  impl_->steps.upload(steps_.data(), steps_.size() * 8);
  impl_->inv_freq.upload(inv_freq_f32_.data(), inv_freq_f32_.size() * 4);
  view_.phase_steps = impl_->steps.data();
  view_.inv_freq = impl_->inv_freq.data();
}

Frequencies FrequencyTable::view(AngleMode mode) const {
  if (mode != AngleMode::exact && mode != AngleMode::hf_compat)
    throw Error(fmt::format("frequencies: mode {} is neither exact nor hf_compat", int(mode)));
  Frequencies f = view_;
  f.mode = mode;
  return f;
}

FrequencyTable FrequencyTable::from_theta(Backend backend, int64_t rotary_dim, double theta, int device) {
  if (rotary_dim <= 0 || rotary_dim % 2 || rotary_dim > 512)
    throw Error(fmt::format("frequencies: rotary_dim {} must be even, from 2 to 512", rotary_dim));
  if (!(theta > 1.0) || !std::isfinite(theta))
    throw Error(fmt::format("frequencies: theta {} must be finite and greater than 1", theta));
  std::vector<double> inv_freq(size_t(rotary_dim / 2));
  for (int64_t i = 0; i < rotary_dim / 2; ++i)
    inv_freq[size_t(i)] = std::pow(theta, -2.0 * double(i) / double(rotary_dim));
  return FrequencyTable(backend, inv_freq, 1.0, device);
}

FrequencyTable::~FrequencyTable() = default;
FrequencyTable::FrequencyTable(FrequencyTable&&) noexcept = default;
FrequencyTable& FrequencyTable::operator=(FrequencyTable&&) noexcept = default;

}  // namespace ropejit
