// Phase steps for in-kernel angles: round(inv_freq / 2pi x 2^64) mod 2^64, in long double (64-bit
// mantissa: a step is within about a unit of its last bit, so at position 2^31 the phase is off by
// less than 2^-32 of a turn).
#include <fmt/format.h>

#include <cfloat>
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
  DeviceBuffer steps, inv_freq, factors;
};

FrequencyTable::FrequencyTable(Backend backend, const std::vector<double>& inv_freq, double attention_factor,
                               int device)
    : FrequencyTable(backend, std::vector<std::vector<double>>{inv_freq}, std::vector<double>{attention_factor}, device) {}

FrequencyTable::FrequencyTable(Backend backend, const std::vector<std::vector<double>>& sets,
                               const std::vector<double>& attention_factors, int device) {
  if (sets.empty() || sets.size() > 64 || attention_factors.size() != sets.size())
    throw Error(fmt::format("frequencies: {} sets and {} attention factors; 1 to 64 sets, a factor each", sets.size(),
                            attention_factors.size()));
  const size_t pairs = sets[0].size();
  if (pairs == 0 || pairs > 256)
    throw Error(fmt::format("frequencies: {} inverse frequencies; a rotary_dim of 2 to 512 has 1 to 256", pairs));
  for (size_t k = 0; k < sets.size(); ++k) {
    if (sets[k].size() != pairs)
      throw Error(fmt::format("frequencies: set {} has {} inverse frequencies, set 0 has {}", k, sets[k].size(), pairs));
    for (size_t i = 0; i < pairs; ++i)
      if (!std::isfinite(sets[k][i]) || sets[k][i] < 0 || sets[k][i] > double(FLT_MAX))
        throw Error(fmt::format("frequencies: inv_freq[{}] = {} must be finite (in f32 too) and not negative",
                                k * pairs + i, sets[k][i]));
    const double f = attention_factors[k];
    if (!std::isfinite(f) || !(f > 0) || f > 1e30)
      throw Error(fmt::format("frequencies: attention_factor {} must be positive and finite", f));
  }
  if (backend != Backend::cuda && backend != Backend::host)
    throw Error(fmt::format("frequencies: backend {} is neither cuda nor host", int(backend)));
  for (const auto& set : sets) inv_freq_.insert(inv_freq_.end(), set.begin(), set.end());
  factors_ = attention_factors;
  steps_.resize(inv_freq_.size());
  inv_freq_f32_.resize(inv_freq_.size());
  for (size_t i = 0; i < inv_freq_.size(); ++i) {
    steps_[i] = phase_step(inv_freq_[i]);
    inv_freq_f32_[i] = float(inv_freq_[i]);  // hf_compat's fp32 frequencies: rounded once
  }
  for (double f : factors_) factors_f32_.push_back(float(f));
  view_.rotary_dim = int64_t(pairs) * 2;
  view_.attention_factor = factors_f32_[0];
  view_.sets = int64_t(sets.size());
  if (backend == Backend::host) {
    view_.phase_steps = steps_.data();
    view_.inv_freq = inv_freq_f32_.data();
    view_.attention_factors = factors_f32_.data();
    return;
  }
  impl_ = std::make_unique<Impl>(Impl{DeviceBuffer(steps_.size() * 8, device), DeviceBuffer(steps_.size() * 4, device),
                                      DeviceBuffer(factors_f32_.size() * 4, device)});
  impl_->steps.upload(steps_.data(), steps_.size() * 8);
  impl_->inv_freq.upload(inv_freq_f32_.data(), inv_freq_f32_.size() * 4);
  impl_->factors.upload(factors_f32_.data(), factors_f32_.size() * 4);
  view_.phase_steps = impl_->steps.data();
  view_.inv_freq = impl_->inv_freq.data();
  view_.attention_factors = impl_->factors.data();
}

Frequencies FrequencyTable::view(AngleMode mode) const {
  if (mode != AngleMode::exact && mode != AngleMode::hf_compat)
    throw Error(fmt::format("frequencies: mode {} is neither exact nor hf_compat", int(mode)));
  Frequencies f = view_;
  f.mode = mode;
  return f;
}

Frequencies FrequencyTable::set(int64_t i, AngleMode mode) const {
  if (i < 0 || i >= view_.sets) throw Error(fmt::format("frequencies: set {} of {}", i, view_.sets));
  Frequencies f = view(mode);
  const size_t pairs = size_t(view_.rotary_dim / 2);
  f.phase_steps = static_cast<const uint64_t*>(view_.phase_steps) + size_t(i) * pairs;
  f.inv_freq = static_cast<const float*>(view_.inv_freq) + size_t(i) * pairs;
  f.attention_factor = factors_f32_[size_t(i)];
  f.sets = 1;
  f.attention_factors = nullptr;
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
