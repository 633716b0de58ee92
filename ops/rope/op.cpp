// The public entry points of RoPE: check, plan, choose a config, launch (or describe what would run).
#include "ops/rope/op.hpp"

#include <algorithm>

#include "jit/precompile.hpp"
#include "ops/rope/params.hpp"
#include "ops/rope/run.hpp"
#include "ropejit/aot.hpp"

namespace ropejit {

namespace rope {

jit::Body (*rope_body)(const RopeSpec& spec, const LaunchConfig& config) = nullptr;

jit::KernelDef rope_kernel_def(const RopeSpec& spec, const LaunchConfig& config) {
  spec.validate();
  validate_config(spec, config);
  jit::KernelDef def;
  def.key = spec.key() + "." + config.key();
  def.signature = Signature(rotation_params(spec));
  def.threads = config.threads * config.tokens;
  if (rope_body) def.body = rope_body(spec, config);
  return def;
}

ConfigRules rope_rules(const RopeSpec& spec) {
  return ConfigRules{"rope", [&spec] { return spec.key(); },
                     [&spec](int cap, double bytes, int64_t l2) { return heuristic_config(spec, cap, bytes, l2); },
                     [&spec](const LaunchConfig& c) { validate_config(spec, c); }};
}

std::vector<LaunchConfig> reachable_configs(const RopeSpec& spec, const ConfigRules& rules) {
  std::vector<LaunchConfig> out;
  auto add = [&](const LaunchConfig& c) {
    if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
  };
  for (int cap = max_vector_width(spec); cap >= 1; cap /= 2) {
    auto c = rules.heuristic(cap, 0, 0);
    add(c);
    if (c.vector_width * dtype_size(spec.dtype) == 16) {  // the heuristic streams calls up to ~12x the L2
      c.streaming = 1;
      add(c);
    }
  }
  for (const auto& r : load_tuning()) {
    if (r.op != rules.op || r.spec_key != rules.spec_key()) continue;
    try {
      auto c = kernel_config_from(r.config);
      rules.validate(c);
      add(c);
    } catch (const Error&) {
    }
  }
  return out;
}

namespace {
jit::KernelCache<SpecConfig, SpecConfigHash>& rope_cache() {
  static jit::KernelCache<SpecConfig, SpecConfigHash> cache;
  return cache;
}
}  // namespace

}  // namespace rope

namespace rope {
namespace {
Ready ready(const Plan& plan, const RopeOptions& options, void* stream) {
  return ready_rotating(
      plan, options, rope_rules(plan.spec), rope_cache(), [&](const LaunchConfig& c) { return SpecConfig{plan.spec, c}; },
      [&](const LaunchConfig& c) { return rope_kernel_def(plan.spec, c); }, stream);
}

void run(const TensorView& q, const TensorView* k, const Positions& positions, const AngleSource& angles,
         const RopeOptions& options, void* stream, Run mode) {
  auto plan = make_plan(q, k, positions, angles, options);
  const Ready r = ready(plan, options, stream);
  if (r.kernel && mode == Run::launch) launch_rotating(*r.kernel, plan, r.config, options.backend, [](ArgPack&) {}, stream);
}
}  // namespace
}  // namespace rope

PreparedCall prepare_rope(const TensorView& q, const TensorView* k, const Positions& positions,
                          const AngleSource& angles, const RopeOptions& options) {
  auto plan = rope::make_plan(q, k, positions, angles, options);
  return rope::make_prepared(plan, options, rope::rope_rules(plan.spec), rope::ready(plan, options, nullptr), nullptr);
}

void apply_rope(const TensorView& q, const TensorView* k, const Positions& positions, const AngleSource& angles,
                const RopeOptions& options, void* stream) {
  rope::run(q, k, positions, angles, options, stream, rope::Run::launch);
}

void warm_up(const TensorView& q, const TensorView* k, const Positions& positions, const AngleSource& angles,
             const RopeOptions& options) {
  rope::run(q, k, positions, angles, options, nullptr, rope::Run::warm_up_only);
}

KernelChoice describe_kernel(const TensorView& q, const TensorView* k, const Positions& positions,
                             const AngleSource& angles, const RopeOptions& options) {
  auto plan = rope::make_plan(q, k, positions, angles, options);
  return rope::describe_rotating(plan, options, rope::rope_rules(plan.spec));
}

std::vector<PrecompiledKernel> precompile(const RopeSpec& spec, const std::vector<int>& sms) {
  spec.validate();
  std::vector<jit::KernelDef> defs;
  for (const auto& c : rope::reachable_configs(spec, rope::rope_rules(spec))) defs.push_back(rope::rope_kernel_def(spec, c));
  return jit::precompile_defs(defs, sms);
}

}  // namespace ropejit
