#include "ops/rope/kernel_store.hpp"

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "ops/rope/bundle.hpp"
#include "ops/rope/compile.hpp"
#include "ops/stats.hpp"
#include "runtime/disk_cache.hpp"
#include "runtime/linker.hpp"

#ifndef ROPEJIT_LLVM_VERSION
#error "ROPEJIT_LLVM_VERSION must name the LLVM the generator is built with"
#endif

namespace ropejit::rope {

namespace {

// ROPEJIT_DUMP_DIR=dir writes each generated kernel's PTX there, for ptxas, cuobjdump and reading.
void dump_ptx(const std::string& symbol, const std::string& ptx) {
  static const char* dir = std::getenv("ROPEJIT_DUMP_DIR");
  if (!dir || !*dir) return;
  std::ofstream(std::string(dir) + "/" + symbol + ".ptx") << ptx;
}

runtime::Module timed_load(const std::string& image, const std::string& what) {
  auto t0 = std::chrono::steady_clock::now();
  auto m = runtime::Module::load(image, what);
  record_module_load(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  return m;
}

}  // namespace

std::string ptx_key(const RopeSpec& spec, const LaunchConfig& config, const codegen::PtxTarget& target) {
  return fmt::format("{}.{}.gen{}.llvm{}.sm{}.ptx{}", spec.key(), config.key(), kGeneratorVersion,
                     ROPEJIT_LLVM_VERSION, target.sm, target.ptx_isa);
}

runtime::Module obtain_module(const RopeSpec& spec, const LaunchConfig& config, const codegen::PtxTarget& target,
                              int driver_version) {
  const std::string key = ptx_key(spec, config, target);
  if (auto b = find_bundled(key)) {
    record_layer(Layer::bundle, true, key);
    if (!b->cubin.empty()) {
      try {
        return timed_load(b->cubin, key);
      } catch (const Error&) {
        // A cubin this driver cannot load (made by a newer ptxas): its PTX, JIT-compiled, serves.
      }
    }
    return timed_load(b->ptx, key);
  }
  record_layer(Layer::bundle, false, key);

  auto disk = runtime::DiskCache::from_env();
  std::string ptx;
  if (disk.enabled()) {
    if (auto e = disk.load_cubin(key, driver_version)) {
      record_layer(Layer::disk_cubin, true, key);
      return timed_load(e->cubin, key);
    }
    record_layer(Layer::disk_cubin, false, key);
    if (auto p = disk.load_ptx(key)) {
      record_layer(Layer::disk_ptx, true, key);
      ptx = *p;
    } else {
      record_layer(Layer::disk_ptx, false, key);
    }
  }
  if (ptx.empty()) {
    ptx = generate_ptx(spec, config, target);
    dump_ptx(kernel_symbol(spec, config), ptx);
  }
  // The driver's linker makes the cubin that later processes load without the PTX JIT. Where it
  // fails, loading the PTX reports the driver's reason.
  std::string cubin;
  try {
    auto t0 = std::chrono::steady_clock::now();
    cubin = runtime::link_cubin(ptx, kernel_symbol(spec, config));
    record_link(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  } catch (const Error&) {
  }
  auto module = timed_load(cubin.empty() ? ptx : cubin, key);
  if (!cubin.empty()) {
    try {
      disk.store(key, driver_version, runtime::CacheEntry{ptx, cubin});
    } catch (const Error& e) {  // a read-only or full cache directory must not fail the call
      std::fprintf(stderr, "ropejit: not caching %s: %s\n", key.c_str(), e.what());
    }
  }
  return module;
}

}  // namespace ropejit::rope
