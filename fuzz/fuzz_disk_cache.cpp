// Disk cache entry decoding. The input is "key\n" followed by the entry's bytes: decode_entry must
// read any bytes as an entry or a miss, and an entry it encodes must decode to itself.
#include <cstdint>
#include <string>

#include "fuzz_common.hpp"
#include "runtime/disk_cache.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string in(reinterpret_cast<const char*>(data), size);
  size_t nl = in.find('\n');
  std::string key = nl == std::string::npos ? "" : in.substr(0, nl);
  std::string bytes = nl == std::string::npos ? in : in.substr(nl + 1);
  try {
    (void)ropejit::runtime::decode_entry(bytes, key);
    // Round trip: the payload split anywhere, under this key.
    ropejit::runtime::CacheEntry made{bytes.substr(0, bytes.size() / 2), bytes.substr(bytes.size() / 2)};
    auto back = ropejit::runtime::decode_entry(ropejit::runtime::encode_entry(key, made), key);
    if (!back || back->ptx != made.ptx || back->cubin != made.cubin) std::abort();
  } catch (const ropejit::Error& e) {
    fuzz::check_error(e);
  }
  return 0;
}
