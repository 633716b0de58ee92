// Device code loaded into the driver, its entry resolved in the current context, with the driver's
// JIT log in every load error. Where the driver has libraries (cuLibraryLoadData, CUDA 12), code is
// loaded context-independently: the driver owns its per-context copies, and nothing ropejit holds
// outlives a destroyed context. Older drivers get a module in the current context.
#pragma once

#include <cuda.h>

#include <string>

#include "runtime/handle.hpp"

namespace ropejit::runtime {

class Module {
 public:
  // Loads PTX text or a cubin image and resolves `entry` in the current context now (so that nothing
  // is loaded later, e.g. while a stream is being captured). `what` names it in errors.
  static Module load(const std::string& image, const std::string& what, const std::string& entry);
  Module() = default;

  CUfunction function() const { return function_; }

 private:
  LibraryHandle library_;
  ModuleHandle module_;
  CUfunction function_ = nullptr;
};

}  // namespace ropejit::runtime
