#include "runtime/module.hpp"

#include <fmt/format.h>

#include <cstring>
#include <vector>

#include "ropejit/core.hpp"
#include "runtime/driver_api.hpp"

namespace ropejit::runtime {

Module Module::load(const std::string& image, const std::string& what) {
  const auto& d = driver();
  std::vector<char> info(8192, 0), error(8192, 0);
  CUjit_option opts[] = {CU_JIT_INFO_LOG_BUFFER, CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES, CU_JIT_ERROR_LOG_BUFFER,
                         CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
  void* vals[] = {info.data(), reinterpret_cast<void*>(info.size()), error.data(),
                  reinterpret_cast<void*>(error.size())};
  Module m;
  CUresult r;
  if (d.cuLibraryLoadData && d.cuLibraryGetKernel && d.cuLibraryUnload) {
    CUlibrary lib = nullptr;
    r = d.cuLibraryLoadData(&lib, image.c_str(), opts, vals, 4, nullptr, nullptr, 0);
    if (r == CUDA_SUCCESS) m.library_ = LibraryHandle(lib);
  } else {
    CUmodule mod = nullptr;
    r = d.cuModuleLoadDataEx(&mod, image.c_str(), 4, opts, vals);
    if (r == CUDA_SUCCESS) m.module_ = ModuleHandle(mod);
  }
  if (r == CUDA_SUCCESS) return m;
  std::string log(error.data(), strnlen(error.data(), error.size()));
  std::string msg = fmt::format("loading {} failed: {}", what, result_text(r));
  if (r == CUDA_ERROR_UNSUPPORTED_PTX_VERSION)
    msg += fmt::format("; the installed driver (version {}) does not support this PTX ISA version", d.version);
  if (!log.empty()) msg += "; driver log: " + log;
  throw Error(ErrorKind::compile, msg);
}

CUfunction Module::function(const std::string& name) const {
  const auto& d = driver();
  if (library_) {
    CUkernel k = nullptr;
    check(d.cuLibraryGetKernel(&k, library_.get(), name.c_str()), ("cuLibraryGetKernel(" + name + ")").c_str());
    if (!d.cuKernelGetFunction) return reinterpret_cast<CUfunction>(k);  // cuLaunchKernel takes a CUkernel too
    CUfunction f = nullptr;
    check(d.cuKernelGetFunction(&f, k), ("cuKernelGetFunction(" + name + ")").c_str());
    return f;
  }
  CUfunction f = nullptr;
  check(d.cuModuleGetFunction(&f, module_.get(), name.c_str()), ("cuModuleGetFunction(" + name + ")").c_str());
  return f;
}

}  // namespace ropejit::runtime
