// A kernel definition: everything the generic pipeline needs to build, cache, find and launch one
// specialisation of any op (or of a user's kernel).
#pragma once

#include <functional>
#include <string>

#include "codegen/targets.hpp"
#include "ropejit/language.hpp"

namespace ropejit::jit {

using Body = std::function<void(lang::Builder&)>;

struct KernelDef {
  std::string key;      // canonical: op, spec and config, e.g. "rope.neox.d128....t256.w8.u2"
  Signature signature;  // the one list of parameters: codegen, host entry and launch all use it
  int threads = 0;      // per program
  Body body;            // builds the code; empty where no generator is linked (libropejit_runtime)

  // The kernel's entry in PTX (and, with "_grid", on the host): the key with '_' for other characters.
  std::string symbol() const;
};

// The disk and bundle key: everything that changes the PTX's bytes (the definition's key, a hash of
// its signature, a hash of the generator's sources, the LLVM version, the sm and the PTX ISA).
std::string ptx_key(const KernelDef& def, const codegen::PtxTarget& target);

// Hash of the sources that generate code (codegen/, the JIT's compile step and kernel definitions,
// and every op's sources: specs, mappings, parameters, bodies), made at build time.
const char* generator_hash();

}  // namespace ropejit::jit
