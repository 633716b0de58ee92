// The public entry points: check, plan, choose a config, launch (or describe what would run).
#include "ops/rope/launch.hpp"
#include "ops/rope/plan.hpp"

namespace ropejit {

void apply_rope(const TensorView& q, const TensorView* k, const Positions& positions, const CosSinTable& table,
                const RopeOptions& options, void* stream) {
  auto plan = rope::make_plan(q, k, positions, table, options);
  auto where = rope::call_device(options);
  auto choice = rope::choose_config(plan, options, [&] { return rope::tuning_device(options); }, where.l2_bytes);
  if (options.backend == Backend::host)
    rope::launch_host(plan, choice.config);
  else
    rope::launch_cuda(plan, choice.config, where, stream);
}

KernelChoice describe_kernel(const TensorView& q, const TensorView* k, const Positions& positions,
                             const CosSinTable& table, const RopeOptions& options) {
  auto plan = rope::make_plan(q, k, positions, table, options);
  auto choice = rope::choose_config(plan, options, [&] { return rope::tuning_device(options); },
                                     rope::call_device(options).l2_bytes);
  KernelChoice out;
  out.spec_key = plan.spec.key();
  out.config = choice.config;
  out.source = choice.source;
  out.candidates = rope::candidate_configs(plan);
  return out;
}

}  // namespace ropejit
