// The generic kernel store. A kernel is found, per backend and context, in this order:
// memory -> bundles -> disk cubin (this driver) -> disk PTX (driver JIT) -> code generation. What had
// to be made is published to the disk cache (PTX and the driver-linked cubin) for later processes.
// The memory layer is keyed by each op's own typed key, so a warm call builds no strings.
#pragma once

#include <cuda.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "codegen/targets.hpp"
#include "jit/kernel_def.hpp"
#include "runtime/module.hpp"
#include "runtime/once_cache.hpp"

namespace ropejit::jit {

// A kernel ready to launch on one backend (and, for cuda, in one context).
struct CompiledKernel {
  CompiledKernel() = default;
  CompiledKernel(const CompiledKernel& o)
      : threads(o.threads), signature(o.signature), host(o.host), function(o.function), code(o.code),
        packing_checked(o.packing_checked.load()) {}
  CompiledKernel& operator=(const CompiledKernel& o) {
    threads = o.threads;
    signature = o.signature;
    host = o.host;
    function = o.function;
    code = o.code;
    packing_checked.store(o.packing_checked.load());
    return *this;
  }
  int threads = 0;
  Signature signature;                   // what ArgPacks for it are checked against
  codegen::HostGridFn host = nullptr;    // host backend
  CUfunction function = nullptr;         // cuda backend
  std::shared_ptr<runtime::Module> code; // keeps `function` loaded
  // Set once an op's packer filled a pack with every name and kind checked: later packs skip the
  // comparisons (the packer is fixed code, so its order cannot change).
  mutable std::atomic<bool> packing_checked{false};
  ArgPack pack() const { return ArgPack(signature, packing_checked.load(std::memory_order_relaxed)); }
};

// Loads the kernel's code for the current context through bundle -> disk -> generation.
runtime::Module obtain_module(const KernelDef& def, const codegen::PtxTarget& target, int driver_version);

// Builds what a memory miss needs: the host function, or (never while `stream` is being captured into
// a graph) the loaded code in the current context.
CompiledKernel compile_for(Backend backend, const KernelDef& def, void* stream);

// Counts an in-memory hit (built false) or miss in stats().
void record_memory(bool built);

// Runs it over `grid` with `args` (checked against the kernel's parameter count). The first launch
// marks the kernel's packing as checked: later packs from the same (fixed) packer skip the names.
void launch(const CompiledKernel& kernel, Backend backend, Grid grid, ArgPack& args, void* stream);

// Where a call runs: the context made current for it (null on the host backend) and its device's L2
// size (0 on the host). Made once per call, so the hot path asks the driver once.
struct CallDevice {
  void* ctx = nullptr;  // CUcontext
  int64_t l2_bytes = 0;
};
CallDevice call_device(Backend backend, int device);
// The device name tuning records are keyed by: the current context's device, or "host-cpu".
std::string tuning_device(Backend backend, int device);

// The memory layer: per (backend, context, op key), built once per process even under concurrent
// first calls. `make` gives the definition, and is called only on a miss.
template <typename Key, typename KeyHash>
class KernelCache {
 public:
  const CompiledKernel& get(Backend backend, void* ctx, const Key& key, const std::function<KernelDef()>& make,
                            void* stream) {
    bool built = false;
    const CompiledKernel& k = cache_.get(
        Entry{backend, ctx, key}, [&] { return compile_for(backend, make(), stream); }, &built);
    record_memory(built);
    return k;
  }

 private:
  struct Entry {
    Backend backend;
    void* ctx;
    Key key;
    bool operator==(const Entry&) const = default;
  };
  struct EntryHash {
    size_t operator()(const Entry& e) const {
      return KeyHash()(e.key) ^ (std::hash<void*>()(e.ctx) * 31 + size_t(e.backend));
    }
  };
  runtime::OnceCache<Entry, CompiledKernel, EntryHash> cache_;
};

}  // namespace ropejit::jit
