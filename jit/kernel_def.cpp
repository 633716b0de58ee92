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

namespace {
// FNV-1a over the signature's every fact (names, kinds, dtypes, flags): a user kernel's key names its
// body's version, but not the parameters it was built for.
uint32_t signature_hash(const Signature& sig) {
  uint32_t h = 2166136261u;
  auto mix = [&](const std::string& s) {
    for (unsigned char c : s) h = (h ^ c) * 16777619u;
  };
  for (const auto& a : sig.args())
    mix(fmt::format("{}:{}:{}:{}:{};", a.name, int(a.kind), int(a.dtype), int(a.readonly), int(a.noalias)));
  return h;
}
}  // namespace

std::string ptx_key(const KernelDef& def, const codegen::PtxTarget& target) {
  return fmt::format("{}.sig{:08x}.gen{}.llvm{}.sm{}.ptx{}", def.key, signature_hash(def.signature), generator_hash(),
                     ROPEJIT_LLVM_VERSION, target.sm, target.ptx_isa);
}

}  // namespace ropejit::jit
