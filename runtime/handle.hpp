// RAII for every driver handle, one template: Owned<T, &DriverApi::release> releases its handle with
// that driver entry point (quietly, since destructors cannot throw and the driver may be gone).
#pragma once

#include <utility>

#include "runtime/driver_api.hpp"

namespace ropejit::runtime {

template <typename T, auto Release>
class Owned {
 public:
  Owned() = default;
  explicit Owned(T handle) : handle_(handle), owned_(true) {}
  ~Owned() { reset(); }
  Owned(Owned&& o) noexcept : handle_(o.handle_), owned_(std::exchange(o.owned_, false)) {}
  Owned& operator=(Owned&& o) noexcept {
    if (this != &o) {
      reset();
      handle_ = o.handle_;
      owned_ = std::exchange(o.owned_, false);
    }
    return *this;
  }
  Owned(const Owned&) = delete;
  Owned& operator=(const Owned&) = delete;

  T get() const { return handle_; }
  explicit operator bool() const { return owned_; }
  void reset() {
    if (!owned_) return;
    owned_ = false;
    if (const auto* d = try_driver(nullptr); d && d->*Release) (d->*Release)(handle_);
  }

 private:
  T handle_{};
  bool owned_ = false;
};

using ModuleHandle = Owned<CUmodule, &DriverApi::cuModuleUnload>;
using LibraryHandle = Owned<CUlibrary, &DriverApi::cuLibraryUnload>;
using LinkHandle = Owned<CUlinkState, &DriverApi::cuLinkDestroy>;
using EventHandle = Owned<CUevent, &DriverApi::cuEventDestroy>;
using StreamHandle = Owned<CUstream, &DriverApi::cuStreamDestroy>;
using GraphHandle = Owned<CUgraph, &DriverApi::cuGraphDestroy>;
using GraphExecHandle = Owned<CUgraphExec, &DriverApi::cuGraphExecDestroy>;
using PrimaryContextHandle = Owned<CUdevice, &DriverApi::cuDevicePrimaryCtxRelease>;
using ContextHandle = Owned<CUcontext, &DriverApi::cuCtxDestroy>;

}  // namespace ropejit::runtime
