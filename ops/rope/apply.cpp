// The public entry points: check, plan, choose a config, launch (or describe what would run).
#include "ops/rope/launch.hpp"
#include "ops/rope/plan.hpp"

namespace ropejit {

void apply_rope(const TensorView& q, const TensorView* k, const Positions& positions, const CosSinTable& table,
                const RopeOptions& options, void* stream) {
  auto plan = rope::make_plan(q, k, positions, table, options);
  auto choice = rope::choose_config(plan, options, [&] { return rope::tuning_device(options); },
                                     rope::call_l2_bytes(options));
  if (options.backend == Backend::host)
    rope::launch_host(plan, choice.config);
  else
    rope::launch_cuda(plan, choice.config, options.device, stream);
}

KernelChoice describe_kernel(const TensorView& q, const TensorView* k, const Positions& positions,
                             const CosSinTable& table, const RopeOptions& options) {
  auto plan = rope::make_plan(q, k, positions, table, options);
  auto choice = rope::choose_config(plan, options, [&] { return rope::tuning_device(options); },
                                     rope::call_l2_bytes(options));
  auto to_public = [](const rope::LaunchConfig& c) { return c; };
  KernelChoice out;
  out.spec_key = plan.spec.key();
  out.config = to_public(choice.config);
  out.source = choice.source;
  for (const auto& c : rope::candidate_configs(plan)) out.candidates.push_back(to_public(c));
  return out;
}

}  // namespace ropejit
