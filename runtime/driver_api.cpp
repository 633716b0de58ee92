#include "runtime/driver_api.hpp"

#include <dlfcn.h>
#include <fmt/format.h>

#include <mutex>

#include "ropejit/core.hpp"

#define ROPEJIT_STR2(x) #x
#define ROPEJIT_STR(x) ROPEJIT_STR2(x)

namespace ropejit::runtime {

namespace {

struct Loaded {
  DriverApi api;
  std::string error;  // empty when usable
};

Loaded load() {
  Loaded l;
  void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* e = dlerror();
    l.error = fmt::format("no CUDA driver: dlopen(\"libcuda.so.1\") failed ({})", e ? e : "unknown reason");
    return l;
  }
  // The library stays loaded for the life of the process: handles outlive any owner we could pick.
#define ROPEJIT_CU_LOAD(name)                                                                       \
  l.api.name = reinterpret_cast<decltype(&::name)>(dlsym(lib, ROPEJIT_STR(name)));                  \
  if (!l.api.name) {                                                                                \
    l.error = fmt::format("the CUDA driver is too old: libcuda.so.1 has no {}", ROPEJIT_STR(name));  \
    return l;                                                                                       \
  }
  ROPEJIT_CU_REQUIRED(ROPEJIT_CU_LOAD)
#undef ROPEJIT_CU_LOAD
#define ROPEJIT_CU_LOAD_OPTIONAL(name) \
  l.api.name = reinterpret_cast<decltype(&::name)>(dlsym(lib, ROPEJIT_STR(name)));
  ROPEJIT_CU_OPTIONAL(ROPEJIT_CU_LOAD_OPTIONAL)
#undef ROPEJIT_CU_LOAD_OPTIONAL
  CUresult r = l.api.cuInit(0);
  if (r != CUDA_SUCCESS) {
    const char* name = nullptr;
    const char* text = nullptr;
    l.api.cuGetErrorName(r, &name);
    l.api.cuGetErrorString(r, &text);
    l.error = fmt::format("cuInit failed: {} ({})", name ? name : "?", text ? text : "?");
    return l;
  }
  l.api.cuDriverGetVersion(&l.api.version);
  int count = 0;
  l.api.cuDeviceGetCount(&count);
  if (count == 0) l.error = "the CUDA driver reports no device";
  return l;
}

const Loaded& loaded() {
  static const Loaded l = load();
  return l;
}

}  // namespace

const DriverApi* try_driver(std::string* why) {
  const auto& l = loaded();
  if (!l.error.empty()) {
    if (why) *why = l.error;
    return nullptr;
  }
  return &l.api;
}

const DriverApi& driver() {
  std::string why;
  const auto* api = try_driver(&why);
  if (!api) throw Error(ErrorKind::no_device, why);
  return *api;
}

std::string result_text(CUresult r) {
  const char* name = nullptr;
  const char* text = nullptr;
  if (const auto* api = try_driver(nullptr)) {
    api->cuGetErrorName(r, &name);
    api->cuGetErrorString(r, &text);
  }
  return fmt::format("{} ({})", name ? name : fmt::format("CUresult {}", static_cast<int>(r)),
                     text ? text : "no description");
}

void check(CUresult r, const char* what) {
  if (r == CUDA_SUCCESS) return;
  ErrorKind kind = r == CUDA_ERROR_INVALID_VALUE ? ErrorKind::invalid_argument
                   : r == CUDA_ERROR_NO_DEVICE || r == CUDA_ERROR_INVALID_DEVICE ? ErrorKind::no_device
                                                                                  : ErrorKind::driver;
  throw Error(kind, fmt::format("{} failed: {}", what, result_text(r)));
}

void missing_symbol(const char* symbol, const char* feature) {
  throw Error(ErrorKind::unsupported,
              fmt::format("the CUDA driver has no {}, which {} needs: update the driver", symbol, feature));
}

}  // namespace ropejit::runtime
