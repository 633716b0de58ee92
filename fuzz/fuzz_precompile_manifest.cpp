// ropejit-precompile's manifest reader (tools/precompile_manifest.cpp, which the tool itself calls).
#include <cstdint>
#include <string>

#include "fuzz_common.hpp"
#include "tools/precompile_manifest.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto specs = ropejit::tools::parse_manifest(std::string(reinterpret_cast<const char*>(data), size), "fuzz.json");
    for (const auto& s : specs) {  // an accepted spec names its kernels
      if (s.op == "rope") (void)s.rope.key();
      else (void)ropejit::QkNormRopeSpec{s.rope, s.weight_dtype, s.one_plus_weight}.key();
    }
  } catch (const ropejit::Error& e) {
    fuzz::check_error(e);
  }
  return 0;
}
