// What every rotating op does with a planned call: choose the config, find the kernel (per context,
// once), pack the arguments, launch; or prepare that for later launches, or describe what it would
// run. Each op adds only its key, its definition and its extra arguments.
#pragma once

#include <functional>

#include "jit/store.hpp"
#include "ops/rope/config_choice.hpp"
#include "ops/rope/params.hpp"

namespace ropejit::rope {

// warm_up_only stops once the kernel is ready in this context.
enum class Run { launch, warm_up_only };

// A planned call's kernel, ready in its context (null for an empty call: nothing to run).
struct Ready {
  const jit::CompiledKernel* kernel = nullptr;
  LaunchConfig config;
  void* ctx = nullptr;  // CUcontext (null on the host backend)
};

// Chooses the config and finds the kernel (per context, once): `key(config)` is the op's in-memory
// key, `def(config)` its kernel definition (made on a miss).
template <typename Cache, typename KeyFn, typename DefFn>
Ready ready_rotating(const Plan& plan, const RopeOptions& options, const ConfigRules& rules, Cache& cache, KeyFn&& key,
                     DefFn&& def, void* stream) {
  auto where = jit::call_device(options.backend, options.device);
  auto choice = choose_config(plan, options, rules, [&] { return jit::tuning_device(options.backend, options.device); },
                              where.l2_bytes);
  if (plan.tokens == 0) return {nullptr, choice.config, where.ctx};  // an empty step: checked, nothing to run
  const auto& kernel = cache.get(options.backend, where.ctx, key(choice.config), [&] { return def(choice.config); }, stream);
  return {&kernel, choice.config, where.ctx};
}

// Packs a planned call's arguments (the rotation's, then `pack_extra`'s) and launches it.
template <typename ExtraFn>
void launch_rotating(const jit::CompiledKernel& kernel, const Plan& plan, const LaunchConfig& config, Backend backend,
                     ExtraFn&& pack_extra, void* stream) {
  ArgPack args = kernel.pack();
  pack_rotation_args(args, plan);
  pack_extra(args);
  jit::launch(kernel, backend, Grid{(plan.tokens + config.tokens - 1) / config.tokens}, args, stream);
}

// A prepared call's state: the plan of its first call, where it runs and its kernel.
PreparedCall make_prepared(const Plan& plan, const RopeOptions& options, const ConfigRules& rules, const Ready& ready,
                           std::function<void(ArgPack&)> pack_extra);

inline KernelChoice describe_rotating(const Plan& plan, const RopeOptions& options, const ConfigRules& rules) {
  auto choice = choose_config(plan, options, rules, [&] { return jit::tuning_device(options.backend, options.device); },
                              jit::call_device(options.backend, options.device).l2_bytes);
  return KernelChoice{rules.spec_key(), choice.config, choice.source, candidate_configs(plan, rules)};
}

}  // namespace ropejit::rope
