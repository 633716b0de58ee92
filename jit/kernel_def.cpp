#include "jit/kernel_def.hpp"

#include <fmt/format.h>

#ifndef ROPEJIT_LLVM_VERSION
#error "ROPEJIT_LLVM_VERSION must name the LLVM the generator is built with"
#endif

namespace ropejit::jit {

std::string KernelDef::symbol() const {
  std::string s = "ropejit_" + key;
  for (char& c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) c = '_';
  return s;
}

std::string ptx_key(const KernelDef& def, const codegen::PtxTarget& target) {
  return fmt::format("{}.gen{}.llvm{}.sm{}.ptx{}", def.key, generator_hash(), ROPEJIT_LLVM_VERSION, target.sm,
                     target.ptx_isa);
}

}  // namespace ropejit::jit
