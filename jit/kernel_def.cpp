#include "jit/kernel_def.hpp"

#include <fmt/format.h>
#include "runtime/files.hpp"

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
// zlib's CRC-32 over the signature's every fact (names, kinds, dtypes, flags): a user kernel's key names
// its body's version, but not the parameters it was built for.
uint32_t signature_hash(const Signature& sig) {
  std::string facts;
  for (const auto& a : sig.args())
    facts += fmt::format("{}:{}:{}:{}:{};", a.name, int(a.kind), int(a.dtype), int(a.readonly), int(a.noalias));
  return runtime::crc32_of(facts);
}
}  // namespace

std::string ptx_key(const KernelDef& def, const codegen::PtxTarget& target) {
  return fmt::format("{}.sig{:08x}.gen{}.llvm{}.sm{}.ptx{}", def.key, signature_hash(def.signature), generator_hash(),
                     ROPEJIT_LLVM_VERSION, target.sm, target.ptx_isa);
}

}  // namespace ropejit::jit
