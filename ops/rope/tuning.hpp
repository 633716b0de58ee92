// The tuning file: best configs per (device, spec key, token bucket), written by ropejit-tune and
// read by apply_rope. Loaded once per process; save_tuning refreshes it.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "ops/rope/spec.hpp"

namespace ropejit::rope {

// The tuned config for this call, if the tuning file has one.
// `device` is asked only when the tuning file has records.
std::optional<LaunchConfig> tuned_config(const std::function<std::string()>& device, const RopeSpec& spec,
                                         int64_t tokens);

}  // namespace ropejit::rope
