// Kernels made ahead of time (bundle directories, embedded bundles), by cache key.
#pragma once

#include <optional>
#include <string>

namespace ropejit::jit {

struct BundledKernel {
  std::string symbol, ptx, cubin;
};
std::optional<BundledKernel> find_bundled(const std::string& key);

}  // namespace ropejit::jit
