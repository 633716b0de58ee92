// RoPE on the generic core: its kernel definition per spec and config, its config rules, and a call
// planned, configured and launched through the kernel store.
#pragma once

#include "jit/kernel_def.hpp"
#include "jit/store.hpp"
#include "ops/rope/config_choice.hpp"
#include "ops/rope/plan.hpp"

namespace ropejit::rope {

// The body generator, set by ops/rope/kernel.cpp where the code generator is linked (libropejit);
// null in libropejit_runtime, whose definitions then serve only lookups.
extern jit::Body (*rope_body)(const RopeSpec& spec, const LaunchConfig& config);

jit::KernelDef rope_kernel_def(const RopeSpec& spec, const LaunchConfig& config);
ConfigRules rope_rules(const RopeSpec& spec);
// The heuristic's config at each vector width the memory might allow (streaming or not), and any
// tuned config for the op and spec: what precompile makes.
std::vector<LaunchConfig> reachable_configs(const RopeSpec& spec, const ConfigRules& rules);

}  // namespace ropejit::rope
