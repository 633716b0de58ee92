// The bundle manifest reader: the input is manifest.json in a bundle directory that also holds one
// small PTX file (k.ptx) and a cubin (k.cubin) a manifest may name.
#include <cstdint>
#include <string>

#include "fuzz_common.hpp"
#include "ropejit/ropejit.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto dir = [] {
    auto d = fuzz::scratch_dir() / "bundle";
    std::filesystem::create_directories(d);
    fuzz::write_file(d / "k.ptx", "//\n.version 8.5\n.target sm_90\n.address_size 64\n");
    fuzz::write_file(d / "k.cubin", std::string("\x7f" "ELF", 4));
    return d;
  }();
  fuzz::write_file(dir / "manifest.json", std::string(reinterpret_cast<const char*>(data), size));
  try {
    ropejit::load_bundle(dir.string());
  } catch (const ropejit::Error& e) {
    fuzz::check_error(e);
  }
  (void)ropejit::bundled_kernel_count();
  return 0;
}
