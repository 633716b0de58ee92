// What every rotating op does with a planned call: choose the config, find the kernel (per context,
// once), pack the arguments, launch; or describe what it would run. Each op adds only its key, its
// definition and its extra arguments.
#pragma once

#include "jit/store.hpp"
#include "ops/rope/config_choice.hpp"
#include "ops/rope/params.hpp"

namespace ropejit::rope {

enum class Run { launch, warm_up_only };

// `key(config)` is the op's in-memory key, `def(config)` its kernel definition (made on a miss),
// `pack_extra(args)` packs the parameters after the rotation's. warm_up_only stops once the kernel
// is ready in this context.
template <typename Cache, typename KeyFn, typename DefFn, typename ExtraFn>
void run_rotating(const Plan& plan, const RopeOptions& options, const ConfigRules& rules, Cache& cache, KeyFn&& key,
                  DefFn&& def, ExtraFn&& pack_extra, void* stream, Run run = Run::launch) {
  auto where = jit::call_device(options.backend, options.device);
  auto choice = choose_config(plan, options, rules, [&] { return jit::tuning_device(options.backend, options.device); },
                              where.l2_bytes);
  if (plan.tokens == 0) return;  // an empty step: everything checked, nothing to run
  const auto& kernel = cache.get(options.backend, where.ctx, key(choice.config), [&] { return def(choice.config); }, stream);
  if (run == Run::warm_up_only) return;
  ArgPack args = kernel.pack();
  pack_rotation_args(args, plan);
  pack_extra(args);
  jit::launch(kernel, options.backend, Grid{plan.tokens}, args, stream);
}

inline KernelChoice describe_rotating(const Plan& plan, const RopeOptions& options, const ConfigRules& rules) {
  auto choice = choose_config(plan, options, rules, [&] { return jit::tuning_device(options.backend, options.device); },
                              jit::call_device(options.backend, options.device).l2_bytes);
  return KernelChoice{rules.spec_key(), choice.config, choice.source, candidate_configs(plan, rules)};
}

}  // namespace ropejit::rope
