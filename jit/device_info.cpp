#include "jit/target.hpp"
#include "ropejit/core.hpp"
#include "runtime/context.hpp"
#include "runtime/driver_api.hpp"

namespace ropejit {

DeviceInfo device_info(int device) {
  DeviceInfo info;
  std::string why;
  const auto* d = runtime::try_driver(&why);
  if (!d) {
    info.reason = why;
    return info;
  }
  try {
    runtime::ensure_context(device);
    const auto& p = runtime::current_device_props();
    info.name = p.name;
    info.sm = p.sm;
    info.multiprocessors = p.multiprocessors;
    info.driver_version = d->version;
    info.ptx_isa = jit::current_ptx_target().ptx_isa;
    info.available = true;
  } catch (const Error& e) {
    info.reason = e.what();
  }
  return info;
}

}  // namespace ropejit
