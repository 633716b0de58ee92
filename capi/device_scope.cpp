#include "capi/device_scope.hpp"

#include <fmt/format.h>

#include <map>
#include <mutex>

#include "runtime/driver_api.hpp"

namespace ropejit::capi {

namespace {
// Device `ordinal`'s primary context, retained once for the life of the process (as the runtime's
// own ensure_context does).
CUcontext primary_context(const runtime::DriverApi& d, int ordinal) {
  static std::mutex mutex;
  static std::map<int, CUcontext> retained;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = retained.find(ordinal);
  if (it != retained.end()) return it->second;
  int count = 0;
  runtime::check(d.cuDeviceGetCount(&count), "cuDeviceGetCount");
  if (ordinal >= count)
    throw Error(ErrorKind::no_device,
                fmt::format("tensors are on cuda:{}, which does not exist (the driver reports {} device(s))", ordinal, count));
  CUdevice dev = 0;
  runtime::check(d.cuDeviceGet(&dev, ordinal), "cuDeviceGet");
  CUcontext ctx = nullptr;
  runtime::check(d.cuDevicePrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain");
  return retained.emplace(ordinal, ctx).first->second;
}
}  // namespace

DeviceScope::DeviceScope(const Place& place) {
  if (place.backend != Backend::cuda) return;
  const auto& d = runtime::driver();
  CUcontext current = nullptr;
  runtime::check(d.cuCtxGetCurrent(&current), "cuCtxGetCurrent");
  if (current) {
    CUdevice dev = 0, want = 0;
    runtime::check(d.cuCtxGetDevice(&dev), "cuCtxGetDevice");
    // The common case: the caller's context is on the tensors' device. (A device that does not exist
    // fails cuDeviceGet here and is named by primary_context below.)
    if (d.cuDeviceGet(&want, place.device) == CUDA_SUCCESS && dev == want) return;
  }
  // No context (the runtime would take device 0's) or another device's: push this device's primary one.
  CUcontext ctx = primary_context(d, place.device);
  runtime::check(ROPEJIT_NEED(d, cuCtxPushCurrent, "running on a tensor's device")(ctx), "cuCtxPushCurrent");
  pushed_ = true;
}

DeviceScope::~DeviceScope() {
  if (!pushed_) return;
  CUcontext popped = nullptr;
  if (const auto* d = runtime::try_driver(nullptr); d && d->cuCtxPopCurrent) d->cuCtxPopCurrent(&popped);
}

}  // namespace ropejit::capi
