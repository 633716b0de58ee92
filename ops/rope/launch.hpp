// Running a planned RoPE call: pick the config, find (or build) the kernel, launch it.
#pragma once

#include "codegen/targets.hpp"
#include "ops/rope/plan.hpp"

#include <functional>
#include <string>
#include <vector>

namespace ropejit::rope {

struct ConfigChoice {
  LaunchConfig config;
  const char* source;  // "options", "tuned" or "heuristic"
};
// The config for a plan: the caller's overrides (checked), else the tuning file's for `device`,
// else the heuristic.
// `device` is asked only when a tuning file exists.
// `l2_bytes`: the device's L2 (0 on the host backend), for the heuristic's streaming choice.
ConfigChoice choose_config(const Plan& plan, const RopeOptions& options, const std::function<std::string()>& device,
                           int64_t l2_bytes);
// Where a call runs: the context made current for it (null on the host backend) and its device's L2
// size (0 on the host). Made once per call and passed on, so the hot path asks the driver once.
struct CallDevice {
  void* ctx = nullptr;  // CUcontext
  int64_t l2_bytes = 0;
};
CallDevice call_device(const RopeOptions& options);
// Every config the plan allows (vector widths the memory permits, threads, unroll), for sweeps.
std::vector<LaunchConfig> candidate_configs(const Plan& plan);
// The device name tuning records are keyed by: the current context's device, or "host-cpu".
std::string tuning_device(const RopeOptions& options);

// The host backend: JIT for this CPU (once per spec + config), then the whole grid.
void launch_host(Plan& plan, const LaunchConfig& config);
// The cuda backend: PTX once per (context, spec + config), loaded once, launched on `stream`.
void launch_cuda(Plan& plan, const LaunchConfig& config, const CallDevice& where, void* stream);

// The PTX target of the current context's device: its sm, and the highest PTX ISA both LLVM and the
// driver accept. Throws when the driver is too old for the device.
codegen::PtxTarget current_ptx_target();

}  // namespace ropejit::rope
