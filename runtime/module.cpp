#include "runtime/module.hpp"

#include <fmt/format.h>

#include <cstring>
#include <vector>

#include "ropejit/core.hpp"
#include "runtime/driver_api.hpp"

namespace ropejit::runtime {

namespace {

// A module, loaded eagerly with the driver's logs: the fallback for old drivers, and how a load
// error is explained (a library may load lazily and has no log to give).
void load_module(const std::string& image, const std::string& what, CUmodule* out) {
  const auto& d = driver();
  std::vector<char> info(8192, 0), error(8192, 0);
  CUjit_option opts[] = {CU_JIT_INFO_LOG_BUFFER, CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES, CU_JIT_ERROR_LOG_BUFFER,
                         CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
  void* vals[] = {info.data(), reinterpret_cast<void*>(info.size()), error.data(),
                  reinterpret_cast<void*>(error.size())};
  CUresult r = d.cuModuleLoadDataEx(out, image.c_str(), 4, opts, vals);
  if (r == CUDA_SUCCESS) return;
  std::string log(error.data(), strnlen(error.data(), error.size()));
  std::string msg = fmt::format("loading {} failed: {}", what, result_text(r));
  if (r == CUDA_ERROR_UNSUPPORTED_PTX_VERSION)
    msg += fmt::format("; the installed driver (version {}) does not support this PTX ISA version", d.version);
  if (!log.empty()) msg += "; driver log: " + log;
  throw Error(ErrorKind::compile, msg);
}

}  // namespace

Module Module::load(const std::string& image, const std::string& what, const std::string& entry) {
  const auto& d = driver();
  Module m;
  if (d.cuLibraryLoadData && d.cuLibraryGetKernel && d.cuLibraryUnload && d.cuKernelGetFunction) {
    // No JIT log options here: a lazily loading library could write them after this call returns.
    CUlibrary lib = nullptr;
    CUkernel kernel = nullptr;
    CUfunction f = nullptr;
    CUresult r = d.cuLibraryLoadData(&lib, image.c_str(), nullptr, nullptr, 0, nullptr, nullptr, 0);
    if (r == CUDA_SUCCESS) {
      m.library_ = LibraryHandle(lib);
      r = d.cuLibraryGetKernel(&kernel, lib, entry.c_str());
    }
    if (r == CUDA_SUCCESS) r = d.cuKernelGetFunction(&f, kernel);  // loads it into this context
    if (r == CUDA_SUCCESS) {
      m.function_ = f;
      return m;
    }
    m = Module();
    // Explain it: the eager module load gives the driver's log (or, if it works, the reason below).
    CUmodule probe = nullptr;
    load_module(image, what, &probe);
    ModuleHandle owner(probe);
    throw Error(ErrorKind::compile, fmt::format("loading {} failed: {} (entry {})", what, result_text(r), entry));
  }
  CUmodule mod = nullptr;
  load_module(image, what, &mod);
  m.module_ = ModuleHandle(mod);
  check(d.cuModuleGetFunction(&m.function_, mod, entry.c_str()), ("cuModuleGetFunction(" + entry + ")").c_str());
  return m;
}

}  // namespace ropejit::runtime
