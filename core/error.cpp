#include "ropejit/core.hpp"

namespace ropejit {

const char* error_kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::invalid_argument: return "invalid argument";
    case ErrorKind::no_device: return "no device";
    case ErrorKind::unsupported: return "unsupported";
    case ErrorKind::compile: return "compile";
    case ErrorKind::driver: return "driver";
    case ErrorKind::io: return "I/O";
    case ErrorKind::internal: return "internal";
  }
  return "unknown";
}

}  // namespace ropejit
