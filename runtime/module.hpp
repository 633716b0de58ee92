// A loaded CUDA module (RAII), with the driver's JIT log in every load error.
#pragma once

#include <cuda.h>

#include <string>

namespace ropejit::runtime {

class Module {
 public:
  // Loads PTX text or a cubin image into the current context. `what` names it in errors.
  static Module load(const std::string& image, const std::string& what);
  Module() = default;
  ~Module();
  Module(Module&& o) noexcept : mod_(o.mod_) { o.mod_ = nullptr; }
  Module& operator=(Module&& o) noexcept;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  CUfunction function(const std::string& name) const;

 private:
  explicit Module(CUmodule m) : mod_(m) {}
  CUmodule mod_ = nullptr;
};

}  // namespace ropejit::runtime
