#include "runtime/context.hpp"

#include <fmt/format.h>

#include <map>
#include <memory>
#include <mutex>

#include "ropejit/core.hpp"
#include "runtime/driver_api.hpp"
#include "runtime/handle.hpp"

namespace ropejit::runtime {

namespace {

// A retained primary context: released (through its device) when dropped.
struct PrimaryContext {
  PrimaryContextHandle device;
  CUcontext ctx = nullptr;
  explicit PrimaryContext(CUdevice dev) {
    check(driver().cuDevicePrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain");
    device = PrimaryContextHandle(dev);
  }
  CUcontext get() const { return ctx; }
};

std::mutex g_mutex;

DeviceProps query(CUdevice dev) {
  const auto& d = driver();
  DeviceProps p;
  p.device = dev;
  char name[256] = {};
  check(d.cuDeviceGetName(name, sizeof name, dev), "cuDeviceGetName");
  p.name = name;
  int major = 0, minor = 0;
  check(d.cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev), "cuDeviceGetAttribute");
  check(d.cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev), "cuDeviceGetAttribute");
  p.sm = major * 10 + minor;
  check(d.cuDeviceGetAttribute(&p.multiprocessors, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev),
        "cuDeviceGetAttribute");
  check(d.cuDeviceGetAttribute(&p.l2_bytes, CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE, dev), "cuDeviceGetAttribute");
  return p;
}

const DeviceProps& props_of(CUdevice dev) {
  static std::map<CUdevice, DeviceProps> cache;
  std::lock_guard<std::mutex> lock(g_mutex);
  auto it = cache.find(dev);
  if (it == cache.end()) it = cache.emplace(dev, query(dev)).first;
  return it->second;
}

}  // namespace

int driver_max_ptx_isa(int v) {
  int major = v / 1000, minor = (v % 1000) / 10;
  if (major >= 13) return 90;
  if (major == 12) {
    static const int isa[] = {80, 81, 82, 83, 84, 85, 85, 86, 87, 88};
    return isa[minor < 10 ? minor : 9];
  }
  if (major == 11) return 70 + (minor < 8 ? minor : 8);
  return 0;  // older drivers: ropejit's PTX is not for them
}

void (*on_first_context)() = nullptr;

CUcontext ensure_context(int ordinal) {
  const auto& d = driver();
  static std::once_flag first;
  std::call_once(first, [] {
    if (on_first_context) on_first_context();
  });
  CUcontext ctx = nullptr;
  check(d.cuCtxGetCurrent(&ctx), "cuCtxGetCurrent");
  if (ctx) return ctx;
  static std::map<int, std::unique_ptr<PrimaryContext>> primaries;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    auto& p = primaries[ordinal];
    if (!p) {
      int count = 0;
      check(d.cuDeviceGetCount(&count), "cuDeviceGetCount");
      if (ordinal < 0 || ordinal >= count)
        throw Error(ErrorKind::no_device, fmt::format("device {} does not exist (the driver reports {} device(s))", ordinal, count));
      CUdevice dev = 0;
      check(d.cuDeviceGet(&dev, ordinal), "cuDeviceGet");
      p = std::make_unique<PrimaryContext>(dev);
    }
    ctx = p->get();
  }
  check(d.cuCtxSetCurrent(ctx), "cuCtxSetCurrent");
  return ctx;
}

const DeviceProps& current_device_props() {
  CUdevice dev = 0;
  check(driver().cuCtxGetDevice(&dev), "cuCtxGetDevice");
  return props_of(dev);
}

const DeviceProps& device_props(int ordinal) {
  CUdevice dev = 0;
  check(driver().cuDeviceGet(&dev, ordinal), "cuDeviceGet");
  return props_of(dev);
}

}  // namespace ropejit::runtime
