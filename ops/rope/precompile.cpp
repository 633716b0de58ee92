// Offline generation: every kernel apply_rope could pick for a spec, for each GPU architecture.
#include <algorithm>

#include "ops/rope/compile.hpp"
#include "ops/rope/kernel_store.hpp"
#include "ops/rope/launch.hpp"
#include "runtime/context.hpp"
#include "runtime/disk_cache.hpp"
#include "runtime/driver_api.hpp"
#include "runtime/linker.hpp"

namespace ropejit {

namespace {

// The heuristic's config at each vector width the memory might allow, and any tuned config.
std::vector<rope::LaunchConfig> reachable_configs(const RopeSpec& spec) {
  std::vector<rope::LaunchConfig> out;
  auto add = [&](const rope::LaunchConfig& c) {
    if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
  };
  for (int cap = rope::max_vector_width(spec); cap >= 1; cap /= 2) {
    auto c = rope::heuristic_config(spec, cap);
    add(c);
    if (cap * dtype_size(spec.dtype) == 16) {  // the heuristic streams calls up to ~12x the L2
      c.streaming = 1;
      add(c);
    }
  }
  for (const auto& r : load_tuning()) {
    if (r.spec_key != spec.key()) continue;
    try {
      rope::validate_config(spec, r.config);
      add(r.config);
    } catch (const Error&) {
    }
  }
  return out;
}

}  // namespace

std::vector<PrecompiledKernel> precompile(const RopeSpec& spec, const std::vector<int>& sms) {
  spec.validate();
  // With a driver, the PTX ISA is the one apply_rope will ask for, and the local device gets a cubin.
  const auto* driver = runtime::try_driver(nullptr);
  int local_sm = 0, isa = codegen::kLlvmMaxPtxIsa;
  if (driver) {
    runtime::ensure_context(0);
    local_sm = runtime::current_device_props().sm;
    isa = std::min(isa, runtime::driver_max_ptx_isa(driver->version));
  }
  std::vector<PrecompiledKernel> out;
  for (int sm : sms)
    for (const auto& config : reachable_configs(spec)) {
      codegen::PtxTarget target{sm, isa};
      PrecompiledKernel k;
      k.key = rope::ptx_key(spec, config, target);
      k.symbol = rope::kernel_symbol(spec, config);
      k.sm = sm;
      k.ptx_isa = isa;
      k.ptx = rope::generate_ptx(spec, config, target);
      if (sm == local_sm) k.cubin = runtime::link_cubin(k.ptx, k.symbol);
      out.push_back(std::move(k));
    }
  return out;
}

void store_in_cache(const std::vector<PrecompiledKernel>& kernels) {
  auto disk = runtime::DiskCache::from_env();
  if (!disk.enabled()) throw Error("the disk cache is off (ROPEJIT_CACHE=off)");
  const auto* driver = runtime::try_driver(nullptr);
  for (const auto& k : kernels) {
    disk.store(k.key, 0, runtime::CacheEntry{k.ptx, ""});
    if (driver && !k.cubin.empty()) disk.store(k.key, driver->version, runtime::CacheEntry{k.ptx, k.cubin});
  }
}

}  // namespace ropejit
