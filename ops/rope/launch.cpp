#include "ops/rope/launch.hpp"

#include <fmt/format.h>

#include <memory>

#include "ops/rope/compile.hpp"
#include "ops/rope/kernel_store.hpp"
#include "ops/rope/tuning.hpp"
#include "ops/stats.hpp"
#include "runtime/context.hpp"
#include "runtime/driver_api.hpp"
#include "runtime/module.hpp"
#include "runtime/once_cache.hpp"

namespace ropejit::rope {

namespace {

struct HostKey {
  RopeSpec spec;
  LaunchConfig config;
  bool operator==(const HostKey&) const = default;
};
struct HostKeyHash {
  size_t operator()(const HostKey& k) const { return hash_combine(hash_value(k.spec), hash_value(k.config)); }
};

struct CudaKey {
  CUcontext ctx;
  RopeSpec spec;
  LaunchConfig config;
  bool operator==(const CudaKey&) const = default;
};
struct CudaKeyHash {
  size_t operator()(const CudaKey& k) const {
    return hash_combine(hash_combine(std::hash<void*>()(k.ctx), hash_value(k.spec)), hash_value(k.config));
  }
};

struct CudaKernel {
  std::shared_ptr<runtime::Module> module;
  CUfunction function = nullptr;
};

int minimum_ptx_isa(int sm) {
  if (sm >= 100) return 86;
  if (sm >= 90) return 78;
  if (sm >= 89) return 78;
  if (sm >= 87) return 74;
  if (sm >= 86) return 71;
  return 70;
}

}  // namespace

CallDevice call_device(const RopeOptions& options) {
  if (options.backend == Backend::host) return {};
  CUcontext ctx = runtime::ensure_context(options.device);
  // The device's properties per context, remembered by this thread: no lock on the hot path.
  thread_local CUcontext last_ctx = nullptr;
  thread_local int64_t last_l2 = 0;
  if (ctx != last_ctx) {
    last_l2 = runtime::current_device_props().l2_bytes;
    last_ctx = ctx;
  }
  return {ctx, last_l2};
}

ConfigChoice choose_config(const Plan& plan, const RopeOptions& options, const std::function<std::string()>& device,
                           int64_t l2_bytes) {
  const double bytes = 2.0 * double(plan.tokens) * (plan.spec.q_heads + plan.spec.k_heads) * plan.spec.head_dim *
                       dtype_size(plan.spec.dtype);
  const bool overridden = options.vector_width || options.threads || options.unroll || options.streaming >= 0;
  if (!overridden) {
    if (auto tuned = tuned_config(device, plan.spec, plan.tokens)) {
      // A tuned width the memory of this call does not allow falls back to the heuristic.
      if (tuned->vector_width <= plan.width_cap) {
        try {
          validate_config(plan.spec, *tuned);
          return {*tuned, "tuned"};
        } catch (const Error&) {
        }
      }
    }
    return {heuristic_config(plan.spec, plan.width_cap, bytes, l2_bytes), "heuristic"};
  }
  LaunchConfig c = heuristic_config(plan.spec, plan.width_cap, bytes, l2_bytes);
  if (options.vector_width) {
    if (options.vector_width > plan.width_cap)
      throw Error(fmt::format("vector_width {} needs every q/k pointer and stride aligned to {} bytes and table rows "
                              "to match; these tensors allow at most {}",
                              options.vector_width, options.vector_width * dtype_size(plan.spec.dtype), plan.width_cap));
    c = heuristic_config(plan.spec, options.vector_width, bytes, l2_bytes);  // threads, unroll to suit the width
    c.vector_width = options.vector_width;
  }
  if (options.threads) c.threads = options.threads;
  if (options.unroll) c.unroll = options.unroll;
  if (options.streaming >= 0) c.streaming = options.streaming;
  validate_config(plan.spec, c);
  return {c, "options"};
}

std::vector<LaunchConfig> candidate_configs(const Plan& plan) {
  std::vector<LaunchConfig> out;
  for (int w = 1; w <= plan.width_cap; w *= 2) {
    if (plan.spec.pairs() % w) continue;
    int chunks = plan.spec.pairs() / w;
    for (int t = 32; t <= 512; t *= 2) {
      if (t < chunks) continue;
      int groups = t / chunks;
      int slots = (plan.spec.q_heads + groups - 1) / groups + (plan.spec.k_heads + groups - 1) / groups;
      for (int u : {1, 2, 4, 8}) {
        if (u > slots && u != 1) continue;
        // Streaming hints apply to 16-byte accesses only.
        for (int cs : {0, 1}) {
          if (cs && w * dtype_size(plan.spec.dtype) != 16) continue;
          LaunchConfig c{t, w, u, cs};
          validate_config(plan.spec, c);
          out.push_back(c);
        }
      }
    }
  }
  return out;
}

std::string tuning_device(const RopeOptions& options) {
  if (options.backend == Backend::host) return "host-cpu";
  runtime::ensure_context(options.device);
  return runtime::current_device_props().name;
}

void launch_host(Plan& plan, const LaunchConfig& config) {
  static runtime::OnceCache<HostKey, codegen::HostGridFn, HostKeyHash> cache;
  bool built = false;
  auto fn = cache.get(HostKey{plan.spec, config}, [&] { return generate_host(plan.spec, config); }, &built);
  built ? record_memory_miss() : record_memory_hit();
  auto params = plan.args.pointers();
  fn(params.data(), plan.tokens, config.threads);
}

codegen::PtxTarget current_ptx_target() {
  const auto& props = runtime::current_device_props();
  int driver_isa = runtime::driver_max_ptx_isa(runtime::driver().version);
  codegen::PtxTarget t{props.sm, std::min(codegen::kLlvmMaxPtxIsa, driver_isa)};
  if (t.ptx_isa < minimum_ptx_isa(props.sm))
    throw Error(fmt::format("the CUDA driver (version {}) accepts PTX ISA up to {}.{}, but {} (sm_{}) needs {}.{}: "
                            "update the driver",
                            runtime::driver().version, driver_isa / 10, driver_isa % 10, props.name, props.sm,
                            minimum_ptx_isa(props.sm) / 10, minimum_ptx_isa(props.sm) % 10));
  return t;
}

void launch_cuda(Plan& plan, const LaunchConfig& config, const CallDevice& where, void* stream) {
  static runtime::OnceCache<CudaKey, CudaKernel, CudaKeyHash> cache;
  const auto& d = runtime::driver();
  auto ctx = static_cast<CUcontext>(where.ctx);  // made current by call_device
  auto cu_stream = static_cast<CUstream>(stream);
  bool built = false;
  const CudaKernel& kernel = cache.get(
      CudaKey{ctx, plan.spec, config},
      [&] {
        // Never compile or load while the stream is captured into a graph.
        CUstreamCaptureStatus status = CU_STREAM_CAPTURE_STATUS_NONE;
        runtime::check(d.cuStreamIsCapturing(cu_stream, &status), "cuStreamIsCapturing");
        if (status != CU_STREAM_CAPTURE_STATUS_NONE)
          throw Error(fmt::format("kernel {} is not compiled yet and the stream is being captured into a CUDA graph: "
                                  "call apply_rope once with the same shapes before capturing",
                                  kernel_symbol(plan.spec, config)));
        auto module = std::make_shared<runtime::Module>(
            obtain_module(plan.spec, config, current_ptx_target(), runtime::driver().version));
        CudaKernel k{module, module->function(kernel_symbol(plan.spec, config))};
        return k;
      },
      &built);
  built ? record_memory_miss() : record_memory_hit();
  auto params = plan.args.pointers();
  runtime::check(d.cuLaunchKernel(kernel.function, unsigned(plan.tokens), 1, 1, unsigned(config.threads), 1, 1, 0,
                                  cu_stream, params.data(), nullptr),
                 "cuLaunchKernel");
}

}  // namespace ropejit::rope
