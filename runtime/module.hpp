// Device code loaded into the driver, with the driver's JIT log in every load error. Where the driver
// has libraries (cuLibraryLoadData, CUDA 12), code is loaded context-independently: the driver loads
// it into each context that launches it, and nothing outlives a destroyed context. Older drivers get
// a module in the current context.
#pragma once

#include <cuda.h>

#include <string>

#include "runtime/handle.hpp"

namespace ropejit::runtime {

class Module {
 public:
  // Loads PTX text or a cubin image. `what` names it in errors.
  static Module load(const std::string& image, const std::string& what);
  Module() = default;

  // The kernel `name` in the current context, loaded there now (so that no load happens later, e.g.
  // while a stream is being captured). Launching it costs no per-launch lookup, which launching the
  // context-independent CUkernel would.
  CUfunction function(const std::string& name) const;
  bool context_independent() const { return bool(library_); }

 private:
  LibraryHandle library_;
  ModuleHandle module_;
};

}  // namespace ropejit::runtime
