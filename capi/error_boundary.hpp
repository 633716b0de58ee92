// The C boundary: no exception crosses it. Each entry point runs its body through `guarded`, which
// turns every exception into a status code and this thread's last-error message.
#pragma once

#include <exception>
#include <new>
#include <string>

#include "ropejit/core.hpp"
#include "ropejit_c.h"

namespace ropejit::capi {

// Records `message` (prefixed with the entry point's name) as this thread's last error; returns `code`.
ropejit_status fail(const char* function, ropejit_status code, const char* message) noexcept;
ropejit_status status_of(ErrorKind kind) noexcept;

template <typename Body>
ropejit_status guarded(const char* function, Body&& body) noexcept {
  try {
    body();
    return ROPEJIT_OK;
  } catch (const Error& e) {
    return fail(function, status_of(e.kind()), e.what());
  } catch (const std::bad_alloc&) {
    return fail(function, ROPEJIT_ERROR_INTERNAL, "out of host memory (std::bad_alloc)");
  } catch (const std::exception& e) {
    return fail(function, ROPEJIT_ERROR_INTERNAL, e.what());
  } catch (...) {
    return fail(function, ROPEJIT_ERROR_INTERNAL, "an exception that is not a std::exception");
  }
}

}  // namespace ropejit::capi
