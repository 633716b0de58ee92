// This thread's last error, the status codes and their names.
#include "capi/error_boundary.hpp"

#include <cstring>

namespace ropejit::capi {

namespace {
thread_local std::string t_last_error;
}

ropejit_status status_of(ErrorKind kind) noexcept {
  // The codes follow ErrorKind's order (ropejit_c.h): success is 0, each kind its index + 1.
  static_assert(int(ErrorKind::invalid_argument) + 1 == ROPEJIT_ERROR_INVALID_ARGUMENT);
  static_assert(int(ErrorKind::internal) + 1 == ROPEJIT_ERROR_INTERNAL);
  int code = int(kind) + 1;
  return code >= ROPEJIT_ERROR_INVALID_ARGUMENT && code <= ROPEJIT_ERROR_INTERNAL ? code : ROPEJIT_ERROR_INTERNAL;
}

ropejit_status fail(const char* function, ropejit_status code, const char* message) noexcept {
  try {
    t_last_error.assign(function).append(": ").append(message);
  } catch (...) {  // no memory even for the message: keep what fits in the old buffer
    t_last_error.clear();
  }
  return code;
}

}  // namespace ropejit::capi

extern "C" {

const char* ropejit_last_error(void) { return ropejit::capi::t_last_error.c_str(); }

const char* ropejit_status_name(ropejit_status status) {
  if (status == ROPEJIT_OK) return "ok";
  if (status < ROPEJIT_ERROR_INVALID_ARGUMENT || status > ROPEJIT_ERROR_INTERNAL) return "unknown status";
  return ropejit::error_kind_name(ropejit::ErrorKind(status - 1));
}

}  // extern "C"
