// Files shared by processes: the cache directory, whole-file reads, and atomic publication (a
// temporary file in the same directory, then rename), so readers never see a partial file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ropejit::runtime {

// A cache or bundle key as a file name: [A-Za-z0-9._-] kept, anything else becomes '_'.
std::string key_file_name(const std::string& key);

// $ROPEJIT_CACHE_DIR, else $XDG_CACHE_HOME/ropejit, else ~/.cache/ropejit.
std::string cache_directory();
std::optional<std::string> read_file(const std::string& path);
// Creates parent directories as needed; throws Error naming the path on failure.
void write_file_atomically(const std::string& path, const std::string& data);

// An exclusive advisory lock (flock) on `path`, created if missing, held for the object's life: one
// holder at a time across threads and processes (each holder opens the file itself). Throws Error
// naming the path when it cannot be opened.
class FileLock {
 public:
  explicit FileLock(const std::string& path);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

// Tests only: called with "before_write", "mid_write" (half the bytes written) and "before_rename"
// during write_file_atomically, so a test can kill the writer at each step. nullptr: none (default).
using WriteStepHook = void (*)(const char* step);
void set_write_step_hook_for_tests(WriteStepHook hook);

// zlib's CRC-32 of `data`, continuing from `crc` (0 to start): the checksum of cache entries and
// bundle files.
uint32_t crc32_of(std::string_view data, uint32_t crc = 0);

}  // namespace ropejit::runtime
