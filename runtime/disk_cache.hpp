// The kernel cache on disk, shared by threads and processes. One directory per PTX key (everything
// that changes the PTX's bytes); in it one entry per driver version holding the PTX and the cubin
// the driver's linker made from it, or a PTX-only entry where no driver was there. Each entry has a
// header with its key, sizes and a CRC-32 of the payload; a truncated, corrupted or foreign entry
// reads as a miss (and is rebuilt and replaced by the caller). Writes are atomic. The directory is
// kept under a size bound, least recently used entries going first; writers' temporaries count
// toward it, and those left by a writer that died (older than 10 minutes) are removed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace ropejit::runtime {

struct CacheEntry {
  std::string ptx;
  std::string cubin;  // empty in a PTX-only entry
};

class DiskCache {
 public:
  // `dir` empty: the cache is off (every lookup misses, stores do nothing).
  explicit DiskCache(std::string dir, uint64_t max_bytes = uint64_t(1) << 30);
  // The cache the environment names now: cache_directory(), off under ROPEJIT_CACHE=off, bounded by
  // ROPEJIT_CACHE_MAX_BYTES. Read at each lookup (only memory misses get here), so tests and tools
  // can point a process at another directory.
  static DiskCache from_env();

  bool enabled() const { return !dir_.empty(); }
  const std::string& dir() const { return dir_; }

  // The entry for (ptx_key, driver_version) with a cubin, if valid.
  std::optional<CacheEntry> load_cubin(const std::string& ptx_key, int driver_version);
  // Any valid entry's PTX for ptx_key.
  std::optional<std::string> load_ptx(const std::string& ptx_key);
  // driver_version 0: a PTX-only entry.
  void store(const std::string& ptx_key, int driver_version, const CacheEntry& entry);

  // Entry files and writers' temporaries, their total size (for tests).
  uint64_t total_bytes() const;
  // Walks of a cache directory for eviction so far in this process (for tests of its cost).
  static uint64_t walks();

 private:
  std::string entry_path(const std::string& ptx_key, int driver_version) const;
  std::optional<CacheEntry> read_entry(const std::string& path, const std::string& key);
  // Walks the directory, evicting (never `keep`) when over the bound; returns the bytes left.
  uint64_t evict(const std::string& keep);

  std::string dir_;
  uint64_t max_bytes_;
};

// Serialised entry (header + payload) and its parser; exposed for tests.
std::string encode_entry(const std::string& key, const CacheEntry& entry);
std::optional<CacheEntry> decode_entry(const std::string& bytes, const std::string& key);

}  // namespace ropejit::runtime
