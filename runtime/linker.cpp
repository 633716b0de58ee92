#include "runtime/linker.hpp"

#include <fmt/format.h>

#include <cstring>
#include <vector>

#include "ropejit/core.hpp"
#include "runtime/driver_api.hpp"
#include "runtime/handle.hpp"

namespace ropejit::runtime {

std::string link_cubin(const std::string& ptx, const std::string& what) {
  const auto& d = driver();
  std::vector<char> error(8192, 0);
  CUjit_option opts[] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
  void* vals[] = {error.data(), reinterpret_cast<void*>(error.size())};
  CUlinkState state = nullptr;
  const char* feature = "linking PTX into a cubin";
  ROPEJIT_NEED(d, cuLinkDestroy, feature);
  check(ROPEJIT_NEED(d, cuLinkCreate, feature)(2, opts, vals, &state), "cuLinkCreate");
  LinkHandle owner(state);  // owns the cubin's memory until destroyed
  CUresult r = ROPEJIT_NEED(d, cuLinkAddData, feature)(state, CU_JIT_INPUT_PTX, const_cast<char*>(ptx.c_str()), ptx.size() + 1,
                               what.c_str(), 0, nullptr, nullptr);
  void* cubin = nullptr;
  size_t size = 0;
  if (r == CUDA_SUCCESS) r = ROPEJIT_NEED(d, cuLinkComplete, feature)(state, &cubin, &size);
  if (r != CUDA_SUCCESS) {
    std::string log(error.data(), strnlen(error.data(), error.size()));
    throw Error(ErrorKind::compile, fmt::format("linking {} into a cubin failed: {}{}", what, result_text(r),
                            log.empty() ? "" : "; driver log: " + log));
  }
  return std::string(static_cast<const char*>(cubin), size);
}

}  // namespace ropejit::runtime
