// libropejit_runtime has no LLVM: kernels come from bundles (and the disk cache) only.
#include <fmt/format.h>

#include "ops/rope/compile.hpp"

namespace ropejit::rope {

std::string generate_ptx(const RopeSpec& spec, const LaunchConfig& config, const codegen::PtxTarget& target) {
  throw Error(fmt::format("libropejit_runtime cannot generate code: no loaded bundle (or cache entry) has the kernel "
                          "for spec {} with config {} on sm_{} (PTX ISA {}.{}); precompile it with ropejit-precompile "
                          "or link libropejit",
                          spec.key(), config.key(), target.sm, target.ptx_isa / 10, target.ptx_isa % 10));
}

codegen::HostGridFn generate_host(const RopeSpec& spec, const LaunchConfig& config) {
  throw Error(fmt::format("libropejit_runtime has no host backend (it needs LLVM): spec {} ({}); link libropejit",
                          spec.key(), config.key()));
}

}  // namespace ropejit::rope
