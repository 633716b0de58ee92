#include "jit/store.hpp"

#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <fstream>

#include "core/stats.hpp"
#include "jit/bundle.hpp"
#include "jit/compile.hpp"
#include "jit/target.hpp"
#include "runtime/context.hpp"
#include "runtime/disk_cache.hpp"
#include "runtime/driver_api.hpp"
#include "runtime/linker.hpp"

namespace ropejit::jit {

namespace {

// ROPEJIT_DUMP_DIR=dir writes each generated kernel's PTX there, for ptxas, cuobjdump and reading.
void dump_ptx(const std::string& symbol, const std::string& ptx) {
  static const char* dir = std::getenv("ROPEJIT_DUMP_DIR");
  if (!dir || !*dir) return;
  std::ofstream(std::string(dir) + "/" + symbol + ".ptx") << ptx;
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

runtime::Module timed_load(const std::string& image, const std::string& what, const std::string& entry) {
  auto t0 = std::chrono::steady_clock::now();
  auto m = runtime::Module::load(image, what, entry);
  record_module_load(ms_since(t0));
  return m;
}

}  // namespace

void record_memory(bool built) { built ? record_memory_miss() : record_memory_hit(); }

runtime::Module obtain_module(const KernelDef& def, const codegen::PtxTarget& target, int driver_version) {
  const std::string key = ptx_key(def, target);
  if (auto b = find_bundled(key)) {
    record_layer(Layer::bundle, true, key);
    if (!b->cubin.empty()) {
      try {
        return timed_load(b->cubin, key, b->symbol);
      } catch (const Error& e) {
        // A cubin this driver cannot load (made by a newer ptxas): its PTX, JIT-compiled, serves.
        log_line(fmt::format("bundled cubin of {} not loadable, using its PTX: {}", key, e.what()));
      }
    }
    return timed_load(b->ptx, key, b->symbol);
  }
  record_layer(Layer::bundle, false, key);

  auto disk = runtime::DiskCache::from_env();
  std::string ptx;
  if (disk.enabled()) {
    if (auto e = disk.load_cubin(key, driver_version)) {
      record_layer(Layer::disk_cubin, true, key);
      try {
        return timed_load(e->cubin, key, def.symbol());
      } catch (const Error& err) {
        log_line(fmt::format("cached cubin of {} not loadable, rebuilding: {}", key, err.what()));
      }
    } else {
      record_layer(Layer::disk_cubin, false, key);
    }
    if (auto p = disk.load_ptx(key)) {
      record_layer(Layer::disk_ptx, true, key);
      ptx = *p;
    } else {
      record_layer(Layer::disk_ptx, false, key);
    }
  }
  if (ptx.empty()) {
    ptx = generate_ptx(def, target);
    dump_ptx(def.symbol(), ptx);
  }
  // The driver's linker makes the cubin that later processes load without the PTX JIT. Where it
  // fails, loading the PTX reports the driver's reason.
  std::string cubin;
  try {
    auto t0 = std::chrono::steady_clock::now();
    cubin = runtime::link_cubin(ptx, def.symbol());
    record_link(ms_since(t0));
  } catch (const Error& e) {
    log_line(fmt::format("no cubin for {} (loading its PTX instead): {}", key, e.what()));
  }
  auto module = timed_load(cubin.empty() ? ptx : cubin, key, def.symbol());
  if (!cubin.empty()) {
    try {
      disk.store(key, driver_version, runtime::CacheEntry{ptx, cubin});
    } catch (const Error& e) {  // a read-only or full cache directory must not fail the call
      std::fprintf(stderr, "ropejit: not caching %s: %s\n", key.c_str(), e.what());
    }
  }
  return module;
}

CompiledKernel compile_for(Backend backend, const KernelDef& def, void* stream) {
  CompiledKernel k;
  k.threads = def.threads;
  k.signature = def.signature;
  if (backend == Backend::host) {
    k.host = generate_host(def);
    return k;
  }
  const auto& d = runtime::driver();
  auto cu_stream = static_cast<CUstream>(stream);
  // Never compile or load while the stream is captured into a graph.
  if (d.cuStreamIsCapturing) {
    CUstreamCaptureStatus status = CU_STREAM_CAPTURE_STATUS_NONE;
    runtime::check(d.cuStreamIsCapturing(cu_stream, &status), "cuStreamIsCapturing");
    if (status != CU_STREAM_CAPTURE_STATUS_NONE)
      throw Error(ErrorKind::invalid_argument,
                  fmt::format("kernel {} is not compiled yet and the stream is being captured into a CUDA graph: "
                              "warm it up first (ropejit::warm_up with the same arguments, or one call outside the capture)",
                              def.key));
  }
  k.code = std::make_shared<runtime::Module>(obtain_module(def, current_ptx_target(), d.version));
  k.function = k.code->function();
  return k;
}

void launch(const CompiledKernel& k, Backend backend, Grid grid, ArgPack& args, void* stream) {
  if (args.signature().size() != k.signature.size())
    throw Error(ErrorKind::internal,
                fmt::format("{} arguments for a kernel of {}", args.signature().size(), k.signature.size()));
  if (!k.packing_checked.load(std::memory_order_relaxed))  // written once, not on every launch
    k.packing_checked.store(true, std::memory_order_relaxed);
  if (backend == Backend::host) {
    k.host(args.pointers(), grid.x, grid.y, grid.z);
    return;
  }
  if (grid.x < 1 || grid.y < 1 || grid.z < 1 || grid.x > INT32_MAX || grid.y > 65535 || grid.z > 65535)
    throw Error(fmt::format("grid ({}, {}, {}) is outside the GPU's limits (2^31-1, 65535, 65535)", grid.x, grid.y,
                            grid.z));
  runtime::check(runtime::driver().cuLaunchKernel(k.function, unsigned(grid.x), unsigned(grid.y), unsigned(grid.z),
                                                  unsigned(k.threads), 1, 1, 0, static_cast<CUstream>(stream),
                                                  args.pointers(), nullptr),
                 "cuLaunchKernel");
}

CallDevice call_device(Backend backend, int device) {
  if (backend == Backend::host) return {};
  CUcontext ctx = runtime::ensure_context(device);
  // The device's properties per context, remembered by this thread: no lock on the hot path.
  thread_local CUcontext last_ctx = nullptr;
  thread_local int64_t last_l2 = 0;
  if (ctx != last_ctx) {
    last_l2 = runtime::current_device_props().l2_bytes;
    last_ctx = ctx;
  }
  return {ctx, last_l2};
}

std::string tuning_device(Backend backend, int device) {
  if (backend == Backend::host) return "host-cpu";
  runtime::ensure_context(device);
  return runtime::current_device_props().name;
}

}  // namespace ropejit::jit
