// The cos/sin table: angles and their cos/sin in fp64 on the host, rounded once to the table dtype.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "ropejit/rope.hpp"
#include "ropejit/testing.hpp"

namespace ropejit {

struct RopeTable::Impl {
  DeviceBuffer cos, sin;
};

RopeTable::RopeTable(Backend backend, int64_t max_position, int64_t rotary_dim, double theta, DType dtype, int device)
    : backend_(backend) {
  if (max_position <= 0) throw Error(fmt::format("table: max_position {} must be positive", max_position));
  if (rotary_dim <= 0 || rotary_dim % 2) throw Error(fmt::format("table: rotary_dim {} must be even and positive", rotary_dim));
  if (!(theta > 1.0) || !std::isfinite(theta))
    throw Error(fmt::format("table: theta {} must be finite and greater than 1", theta));
  if (backend != Backend::cuda && backend != Backend::host)
    throw Error(fmt::format("table: backend {} is neither cuda nor host", int(backend)));
  // Sizes that overflow, or a table past 2^40 bytes, are refused before anything is allocated.
  if (max_position > (int64_t(1) << 40) / std::max<int64_t>(1, rotary_dim / 2 * 8))
    throw Error(fmt::format("table: max_position {} x rotary_dim {} is too large", max_position, rotary_dim));
  if (dtype != DType::f32 && dtype != DType::bf16)
    throw Error(fmt::format("table: dtype {} is not supported: use f32 or bf16", dtype_name(dtype)));
  const int64_t half = rotary_dim / 2;
  const size_t bytes = size_t(max_position) * size_t(half) * size_t(dtype_size(dtype));
  host_cos_.resize(bytes);
  host_sin_.resize(bytes);
  std::vector<double> inv_freq(half);
  for (int64_t i = 0; i < half; ++i) inv_freq[i] = std::pow(theta, -2.0 * double(i) / double(rotary_dim));
  for (int64_t p = 0; p < max_position; ++p)
    for (int64_t i = 0; i < half; ++i) {
      double angle = double(p) * inv_freq[i];  // exact to fp64 rounding: no phase loss at long context
      store_from_double(dtype, host_cos_.data(), p * half + i, std::cos(angle));
      store_from_double(dtype, host_sin_.data(), p * half + i, std::sin(angle));
    }
  view_.dtype = dtype;
  view_.max_position = max_position;
  view_.rotary_dim = rotary_dim;
  if (backend == Backend::host) {
    view_.cos = host_cos_.data();
    view_.sin = host_sin_.data();
    return;
  }
  impl_ = std::make_unique<Impl>(Impl{DeviceBuffer(bytes, device), DeviceBuffer(bytes, device)});
  impl_->cos.upload(host_cos_.data(), bytes);
  impl_->sin.upload(host_sin_.data(), bytes);
  view_.cos = impl_->cos.data();
  view_.sin = impl_->sin.data();
}

RopeTable::~RopeTable() = default;
RopeTable::RopeTable(RopeTable&&) noexcept = default;
RopeTable& RopeTable::operator=(RopeTable&&) noexcept = default;

}  // namespace ropejit
