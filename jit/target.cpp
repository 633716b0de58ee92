#include "jit/target.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "ropejit/core.hpp"
#include "runtime/context.hpp"
#include "runtime/driver_api.hpp"

namespace ropejit::jit {

namespace {
// The lowest PTX ISA that knows each architecture.
int minimum_ptx_isa(int sm) {
  if (sm >= 100) return 86;
  if (sm >= 89) return 78;
  if (sm >= 87) return 74;
  if (sm >= 86) return 71;
  return 70;
}
}  // namespace

codegen::PtxTarget ptx_target(int sm, int driver_version, const char* device_name) {
  int driver_isa = driver_version ? runtime::driver_max_ptx_isa(driver_version) : codegen::kLlvmMaxPtxIsa;
  codegen::PtxTarget t{sm, std::min(codegen::kLlvmMaxPtxIsa, driver_isa)};
  if (t.ptx_isa < minimum_ptx_isa(sm))
    throw Error(ErrorKind::unsupported,
                fmt::format("the CUDA driver (version {}) accepts PTX ISA up to {}.{}, but {} (sm_{}) needs {}.{}: "
                            "update the driver",
                            driver_version, driver_isa / 10, driver_isa % 10, device_name ? device_name : "the device",
                            sm, minimum_ptx_isa(sm) / 10, minimum_ptx_isa(sm) % 10));
  return t;
}

codegen::PtxTarget current_ptx_target() {
  const auto& props = runtime::current_device_props();
  return ptx_target(props.sm, runtime::driver().version, props.name.c_str());
}

}  // namespace ropejit::jit
