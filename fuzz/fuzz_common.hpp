// What every fuzz target shares: a scratch directory of its own (per process), and the contract:
// an input either works or throws ropejit::Error. Only Error is caught; anything else (a foreign
// exception, a crash, a sanitizer report) ends the process, which libFuzzer reports with the input.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include "ropejit/core.hpp"

namespace fuzz {

inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("ropejit-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

inline void write_file(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  if (!out) std::abort();  // the harness's own failure, not the library's
}

// Every Error must say what went wrong and carry a known kind.
inline void check_error(const ropejit::Error& e) {
  if (std::string(e.what()).empty()) std::abort();
  if (uint8_t(e.kind()) > uint8_t(ropejit::ErrorKind::internal)) std::abort();
}

// Reads fixed-size little-endian fields from the front of the input; zeros once it runs out.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  template <typename T>
  T get() {
    T v{};
    unsigned char* p = reinterpret_cast<unsigned char*>(&v);
    for (size_t i = 0; i < sizeof(T); ++i) p[i] = pos_ < size_ ? data_[pos_++] : 0;
    return v;
  }
  size_t left() const { return size_ - pos_; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

}  // namespace fuzz
