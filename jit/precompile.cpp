#include "jit/precompile.hpp"

#include <algorithm>

#include "jit/compile.hpp"
#include "jit/target.hpp"
#include "runtime/context.hpp"
#include "runtime/disk_cache.hpp"
#include "runtime/driver_api.hpp"
#include "runtime/linker.hpp"

namespace ropejit {

namespace jit {

std::vector<PrecompiledKernel> precompile_defs(const std::vector<KernelDef>& defs, const std::vector<int>& sms) {
  // With a driver, the PTX ISA is the one a launch will ask for, and the local device gets a cubin.
  const auto* driver = runtime::try_driver(nullptr);
  int local_sm = 0, driver_version = 0;
  if (driver) {
    runtime::ensure_context(0);
    local_sm = runtime::current_device_props().sm;
    driver_version = driver->version;
  }
  std::vector<PrecompiledKernel> out;
  for (int sm : sms) {
    const codegen::PtxTarget target = ptx_target(sm, driver_version);
    for (const auto& def : defs) {
      PrecompiledKernel k;
      k.key = ptx_key(def, target);
      k.symbol = def.symbol();
      k.sm = sm;
      k.ptx_isa = target.ptx_isa;
      k.ptx = generate_ptx(def, target);
      if (sm == local_sm) k.cubin = runtime::link_cubin(k.ptx, k.symbol);
      out.push_back(std::move(k));
    }
  }
  return out;
}

}  // namespace jit

void store_in_cache(const std::vector<PrecompiledKernel>& kernels) {
  auto disk = runtime::DiskCache::from_env();
  if (!disk.enabled()) throw Error(ErrorKind::invalid_argument, "the disk cache is off (ROPEJIT_CACHE=off)");
  const auto* driver = runtime::try_driver(nullptr);
  for (const auto& k : kernels) {
    disk.store(k.key, 0, runtime::CacheEntry{k.ptx, ""});
    if (driver && !k.cubin.empty()) disk.store(k.key, driver->version, runtime::CacheEntry{k.ptx, k.cubin});
  }
}

}  // namespace ropejit
