// libropejit_runtime has no LLVM: kernels come from bundles (and the disk cache) only.
#include <fmt/format.h>

#include "jit/compile.hpp"

namespace ropejit::jit {

std::string generate_ptx(const KernelDef& def, const codegen::PtxTarget& target) {
  throw Error(ErrorKind::unsupported,
              fmt::format("libropejit_runtime cannot generate code: no loaded bundle (or cache entry) has the kernel "
                          "{} on sm_{} (PTX ISA {}.{}); precompile it with ropejit-precompile or link libropejit",
                          def.key, target.sm, target.ptx_isa / 10, target.ptx_isa % 10));
}

codegen::HostGridFn generate_host(const KernelDef& def) {
  throw Error(ErrorKind::unsupported,
              fmt::format("libropejit_runtime has no host backend (it needs LLVM): kernel {}; link libropejit", def.key));
}

}  // namespace ropejit::jit
