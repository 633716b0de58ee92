#include "runtime/module.hpp"

#include <fmt/format.h>

#include <cstring>
#include <vector>

#include "ropejit/ropejit.hpp"
#include "runtime/driver_api.hpp"

namespace ropejit::runtime {

Module::~Module() {
  if (mod_) driver().cuModuleUnload(mod_);
}

Module& Module::operator=(Module&& o) noexcept {
  if (this != &o) {
    if (mod_) driver().cuModuleUnload(mod_);
    mod_ = o.mod_;
    o.mod_ = nullptr;
  }
  return *this;
}

Module Module::load(const std::string& image, const std::string& what) {
  const auto& d = driver();
  std::vector<char> info(8192, 0), error(8192, 0);
  CUjit_option opts[] = {CU_JIT_INFO_LOG_BUFFER, CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES, CU_JIT_ERROR_LOG_BUFFER,
                         CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
  void* vals[] = {info.data(), reinterpret_cast<void*>(info.size()), error.data(),
                  reinterpret_cast<void*>(error.size())};
  CUmodule m = nullptr;
  CUresult r = d.cuModuleLoadDataEx(&m, image.c_str(), 4, opts, vals);
  if (r == CUDA_SUCCESS) return Module(m);
  std::string log(error.data(), strnlen(error.data(), error.size()));
  std::string msg = fmt::format("loading {} failed: {}", what, result_text(r));
  if (r == CUDA_ERROR_UNSUPPORTED_PTX_VERSION)
    msg += fmt::format("; the installed driver (version {}) does not support this PTX ISA version", d.version);
  if (!log.empty()) msg += "; driver log: " + log;
  throw Error(msg);
}

CUfunction Module::function(const std::string& name) const {
  CUfunction f = nullptr;
  check(driver().cuModuleGetFunction(&f, mod_, name.c_str()), ("cuModuleGetFunction(" + name + ")").c_str());
  return f;
}

}  // namespace ropejit::runtime
