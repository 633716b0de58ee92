// The public entry points of QK-norm + RoPE: RoPE's checks plus the weights', then the generic path.
#include "ops/qk_norm_rope/op.hpp"

#include <fmt/format.h>

#include <cmath>

#include "jit/precompile.hpp"
#include "jit/store.hpp"
#include "ops/rope/op.hpp"
#include "ops/rope/params.hpp"
#include "ops/rope/run.hpp"

namespace ropejit {

namespace qk_norm_rope {

jit::Body (*body)(const QkNormRopeSpec& spec, const LaunchConfig& config) = nullptr;

jit::KernelDef kernel_def(const QkNormRopeSpec& spec, const LaunchConfig& config) {
  spec.validate();
  rope::validate_config(spec.rope, config, true);
  jit::KernelDef def;
  def.key = spec.key() + "." + config.key();
  auto params = rope::rotation_params(spec.rope);
  for (auto& a : rope::norm_params(spec.weight_dtype)) params.push_back(std::move(a));
  def.signature = Signature(std::move(params));
  def.threads = config.threads;
  if (body) def.body = body(spec, config);
  return def;
}

rope::ConfigRules rules(const QkNormRopeSpec& spec) {
  return rope::ConfigRules{
      "qk_norm_rope", [&spec] { return spec.key(); },
      [&spec](int cap, double bytes, int64_t l2) { return rope::heuristic_config(spec.rope, cap, bytes, l2, true); },
      [&spec](const LaunchConfig& c) { rope::validate_config(spec.rope, c, true); }, true};
}

namespace {

struct Planned {
  rope::Plan plan;
  QkNormRopeSpec spec;
};

Planned make_plan(const TensorView& q, const TensorView* k, const Positions& positions, const AngleSource& angles,
                  const QkNorm& norm, const RopeOptions& options) {
  if (options.inverse)
    throw Error(ErrorKind::unsupported,
                "options.inverse: the fused QK-norm + RoPE op has no backward; the inverse rotation is RoPE's only");
  Planned p{rope::make_plan(q, k, positions, angles, options), {}};
  if (!norm.q_weight) throw Error("norm: q_weight is null");
  if (k && !norm.k_weight) throw Error("norm: k_weight is null, and k is given");
  if (norm.weight_dtype != DType::f32 && norm.weight_dtype != q.dtype)
    throw Error(fmt::format("norm: weight dtype {} is not supported: use f32 or the dtype of q and k ({})",
                            dtype_name(norm.weight_dtype), dtype_name(q.dtype)));
  if (!(norm.eps > 0) || !std::isfinite(norm.eps) || norm.eps > 1e30)
    throw Error(fmt::format("norm: eps {} must be positive and finite", norm.eps));
  const int ws = dtype_size(norm.weight_dtype);
  auto aligned = [&](const void* w, int bytes) { return !w || reinterpret_cast<uintptr_t>(w) % uintptr_t(bytes) == 0; };
  if (!aligned(norm.q_weight, ws) || !aligned(norm.k_weight, ws))
    throw Error("norm: a weight pointer is not aligned to its elements");
  // Vector accesses of the weights as wide as q's: narrow the width until both weights allow it.
  int& w = p.plan.width_cap;
  while (w > 1 && !(aligned(norm.q_weight, std::min(16, w * ws)) && aligned(norm.k_weight, std::min(16, w * ws)))) w /= 2;
  p.spec.rope = p.plan.spec;
  p.spec.weight_dtype = norm.weight_dtype;
  p.spec.one_plus_weight = norm.one_plus_weight;
  p.spec.validate();
  return p;
}

struct KeyHash {
  size_t operator()(const std::pair<QkNormRopeSpec, LaunchConfig>& k) const {
    return rope::hash_combine(rope::hash_combine(rope::hash_value(k.first.rope), rope::hash_value(k.second)),
                              size_t(k.first.weight_dtype) * 2 + size_t(k.first.one_plus_weight));
  }
};

jit::KernelCache<std::pair<QkNormRopeSpec, LaunchConfig>, KeyHash>& cache() {
  static jit::KernelCache<std::pair<QkNormRopeSpec, LaunchConfig>, KeyHash> c;
  return c;
}

}  // namespace
}  // namespace qk_norm_rope

namespace qk_norm_rope {
namespace {
rope::Ready ready(const Planned& p, const RopeOptions& options, void* stream) {
  return rope::ready_rotating(
      p.plan, options, rules(p.spec), cache(), [&](const KernelConfig& c) { return std::pair{p.spec, c}; },
      [&](const KernelConfig& c) { return kernel_def(p.spec, c); }, stream);
}

std::function<void(ArgPack&)> norm_packer(const QkNorm& norm) {
  return [norm](ArgPack& args) { rope::pack_norm_args(args, norm.q_weight, norm.k_weight, float(norm.eps)); };
}

void run(const TensorView& q, const TensorView* k, const Positions& positions, const AngleSource& angles,
         const QkNorm& norm, const RopeOptions& options, void* stream, rope::Run mode) {
  auto p = make_plan(q, k, positions, angles, norm, options);
  const rope::Ready r = ready(p, options, stream);
  if (r.kernel && mode == rope::Run::launch) rope::launch_rotating(*r.kernel, p.plan, r.config, options.backend, norm_packer(norm), stream);
}
}  // namespace
}  // namespace qk_norm_rope

PreparedCall prepare_qk_norm_rope(const TensorView& q, const TensorView* k, const Positions& positions,
                                  const AngleSource& angles, const QkNorm& norm, const RopeOptions& options) {
  auto p = qk_norm_rope::make_plan(q, k, positions, angles, norm, options);
  return rope::make_prepared(p.plan, options, qk_norm_rope::rules(p.spec), qk_norm_rope::ready(p, options, nullptr),
                             qk_norm_rope::norm_packer(norm));
}

void apply_qk_norm_rope(const TensorView& q, const TensorView* k, const Positions& positions, const AngleSource& angles,
                        const QkNorm& norm, const RopeOptions& options, void* stream) {
  qk_norm_rope::run(q, k, positions, angles, norm, options, stream, rope::Run::launch);
}

void warm_up(const TensorView& q, const TensorView* k, const Positions& positions, const AngleSource& angles,
             const QkNorm& norm, const RopeOptions& options) {
  qk_norm_rope::run(q, k, positions, angles, norm, options, nullptr, rope::Run::warm_up_only);
}

KernelChoice describe_qk_norm_rope(const TensorView& q, const TensorView* k, const Positions& positions,
                                   const AngleSource& angles, const QkNorm& norm, const RopeOptions& options) {
  auto p = qk_norm_rope::make_plan(q, k, positions, angles, norm, options);
  return rope::describe_rotating(p.plan, options, qk_norm_rope::rules(p.spec));
}

std::vector<PrecompiledKernel> precompile(const QkNormRopeSpec& spec, const std::vector<int>& sms) {
  spec.validate();
  std::vector<jit::KernelDef> defs;
  for (const auto& c : rope::reachable_configs(spec.rope, qk_norm_rope::rules(spec)))
    defs.push_back(qk_norm_rope::kernel_def(spec, c));
  return jit::precompile_defs(defs, sms);
}

}  // namespace ropejit
