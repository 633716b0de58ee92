// How a rotating op (RoPE, QK-norm + RoPE) picks its config: the caller's overrides (checked), else
// the tuning file's record for (device, op, spec, token bucket), else the op's heuristic.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "ops/rope/plan.hpp"

namespace ropejit::rope {

struct ConfigChoice {
  LaunchConfig config;
  const char* source;  // "options", "tuned" or "heuristic"
};

// What differs per op: its name and spec key (for tuning records), heuristic and config check.
struct ConfigRules {
  const char* op;
  std::function<std::string()> spec_key;
  std::function<LaunchConfig(int width_cap, double bytes_moved, int64_t l2_bytes)> heuristic;
  std::function<void(const LaunchConfig&)> validate;
  bool norm = false;  // lanes per head padded to a power of two (see mapping)
};

// `device` is asked only when a tuning file has records; `l2_bytes` (0 on the host) feeds the
// heuristic's streaming choice.
ConfigChoice choose_config(const Plan& plan, const RopeOptions& options, const ConfigRules& rules,
                           const std::function<std::string()>& device, int64_t l2_bytes);
// Every config the plan allows (vector widths the memory permits, threads, unroll), for sweeps.
std::vector<LaunchConfig> candidate_configs(const Plan& plan, const ConfigRules& rules);
// Bytes a call moves: q and k read and written once.
double bytes_moved(const Plan& plan);

}  // namespace ropejit::rope
