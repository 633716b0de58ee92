// The public entry point: check, plan, launch.
#include "ops/rope/launch.hpp"
#include "ops/rope/plan.hpp"

namespace ropejit {

void apply_rope(const TensorView& q, const TensorView* k, const Positions& positions, const CosSinTable& table,
                const RopeOptions& options, void* stream) {
  auto plan = rope::make_plan(q, k, positions, table, options);
  auto config = rope::choose_config(plan, options);
  if (options.backend == Backend::host)
    rope::launch_host(plan, config);
  else
    rope::launch_cuda(plan, config, options.device, stream);
}

}  // namespace ropejit
