#include "runtime/disk_cache.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <vector>

#include "ropejit/core.hpp"
#include "runtime/files.hpp"

namespace ropejit::runtime {

namespace fs = std::filesystem;

namespace {
// Every entry under `dir` (recursively or not), walked with error codes only: another process may
// remove files and folders while we walk (its eviction), which must end the walk, not throw.
template <typename Iterator, typename Fn>
void walk(const fs::path& dir, Fn&& fn) {
  std::error_code ec;
  Iterator it(dir, fs::directory_options::skip_permission_denied, ec);
  for (; !ec && it != Iterator(); it.increment(ec)) fn(*it);
}
}  // namespace

namespace {

constexpr const char* kMagic = "ropejit-cache-1";

uint32_t crc(const std::string& a, const std::string& b) { return crc32_of(b, crc32_of(a)); }

}  // namespace

std::string encode_entry(const std::string& key, const CacheEntry& e) {
  return fmt::format("{}\n{}\n{} {} {:08x}\n", kMagic, key, e.ptx.size(), e.cubin.size(), crc(e.ptx, e.cubin)) + e.ptx +
         e.cubin;
}

std::optional<CacheEntry> decode_entry(const std::string& bytes, const std::string& key) {
  size_t a = bytes.find('\n');
  if (a == std::string::npos || bytes.compare(0, a, kMagic) != 0) return std::nullopt;
  size_t b = bytes.find('\n', a + 1);
  if (b == std::string::npos || bytes.compare(a + 1, b - a - 1, key) != 0) return std::nullopt;  // foreign
  size_t c = bytes.find('\n', b + 1);
  if (c == std::string::npos) return std::nullopt;
  unsigned long long ptx_size = 0, cubin_size = 0;
  unsigned int sum = 0;
  std::string sizes = bytes.substr(b + 1, c - b - 1);
  if (std::sscanf(sizes.c_str(), "%llu %llu %x", &ptx_size, &cubin_size, &sum) != 3) return std::nullopt;
  const unsigned long long rest = bytes.size() - (c + 1);
  if (ptx_size > rest || cubin_size != rest - ptx_size) return std::nullopt;  // truncated, padded, or sizes that wrap
  CacheEntry e{bytes.substr(c + 1, ptx_size), bytes.substr(c + 1 + ptx_size, cubin_size)};
  if (crc(e.ptx, e.cubin) != sum) return std::nullopt;  // corrupted
  return e;
}

DiskCache::DiskCache(std::string dir, uint64_t max_bytes) : dir_(std::move(dir)), max_bytes_(max_bytes) {}

DiskCache DiskCache::from_env() {
  const char* mode = std::getenv("ROPEJIT_CACHE");
  if (mode && std::string(mode) == "off") return DiskCache("");
  uint64_t max = uint64_t(1) << 30;
  if (const char* m = std::getenv("ROPEJIT_CACHE_MAX_BYTES"); m && *m) {
    // Digits only: "1k" or "abc" must not read as 0 (which would evict everything).
    char* end = nullptr;
    errno = 0;
    unsigned long long v = std::strtoull(m, &end, 10);
    if (*end || errno || m[0] == '-') {
      static bool said = false;
      if (!said) std::fprintf(stderr, "ropejit: ROPEJIT_CACHE_MAX_BYTES=%s is not a byte count; using %llu\n", m, (unsigned long long)max);
      said = true;
    } else {
      max = v;
    }
  }
  return DiskCache(cache_directory(), max);
}

std::string DiskCache::entry_path(const std::string& ptx_key, int driver_version) const {
  return (fs::path(dir_) / key_file_name(ptx_key) /
          (driver_version ? fmt::format("driver{}.rjk", driver_version) : std::string("ptx.rjk")))
      .string();
}

std::optional<CacheEntry> DiskCache::read_entry(const std::string& path, const std::string& key) {
  auto bytes = read_file(path);
  if (!bytes) return std::nullopt;
  auto e = decode_entry(*bytes, key);
  if (e) {  // a hit is a use: LRU eviction goes by modification time
    std::error_code ec;
    fs::last_write_time(path, fs::file_time_type::clock::now(), ec);
  }
  return e;
}

std::optional<CacheEntry> DiskCache::load_cubin(const std::string& ptx_key, int driver_version) {
  if (!enabled() || !driver_version) return std::nullopt;
  auto key = fmt::format("{}|driver{}", ptx_key, driver_version);
  auto e = read_entry(entry_path(ptx_key, driver_version), key);
  if (e && e->cubin.empty()) return std::nullopt;
  return e;
}

std::optional<std::string> DiskCache::load_ptx(const std::string& ptx_key) {
  if (!enabled()) return std::nullopt;
  if (auto e = read_entry(entry_path(ptx_key, 0), ptx_key + "|ptx")) return e->ptx;
  std::optional<std::string> found;
  walk<fs::directory_iterator>(fs::path(dir_) / key_file_name(ptx_key), [&](const fs::directory_entry& f) {
    auto name = f.path().filename().string();
    if (found || name.rfind("driver", 0) != 0 || f.path().extension() != ".rjk") return;
    int v = std::atoi(name.c_str() + 6);
    if (auto e = read_entry(f.path().string(), fmt::format("{}|driver{}", ptx_key, v))) found = e->ptx;
  });
  return found;
}

namespace {
// What this process knows of a cache directory's size: walked once, then kept up to date by its own
// stores, and walked again when that passes the bound or is a minute old (other processes write
// too). A walk over the bound evicts down to 80% of it, so walks are paid for by the entries they
// remove: storing into a large cache no longer walks it every time.
struct Usage {
  uint64_t bytes = 0;
  std::chrono::steady_clock::time_point walked;
  bool known = false;
};
std::mutex usage_mutex;
std::map<std::string, Usage>& usage() {
  static std::map<std::string, Usage> m;
  return m;
}
std::atomic<uint64_t> walk_count{0};
constexpr auto kUsageFresh = std::chrono::seconds(60);
// A writer's temporary older than this was left by a writer that died (a write takes milliseconds).
constexpr auto kStaleTemp = std::chrono::minutes(10);

bool is_temp(const fs::path& p) { return p.filename().string().find(".rjk.tmp.") != std::string::npos; }
}  // namespace

uint64_t DiskCache::walks() { return walk_count.load(); }

void DiskCache::store(const std::string& ptx_key, int driver_version, const CacheEntry& entry) {
  if (!enabled()) return;
  auto key = driver_version ? fmt::format("{}|driver{}", ptx_key, driver_version) : ptx_key + "|ptx";
  const std::string bytes = encode_entry(key, entry);
  const std::string path = entry_path(ptx_key, driver_version);
  write_file_atomically(path, bytes);
  std::lock_guard<std::mutex> lock(usage_mutex);
  Usage& u = usage()[dir_];
  u.bytes += bytes.size();
  if (!u.known || u.bytes > max_bytes_ || std::chrono::steady_clock::now() - u.walked > kUsageFresh) {
    u.bytes = evict(path);
    u.walked = std::chrono::steady_clock::now();
    u.known = true;
  }
}

uint64_t DiskCache::total_bytes() const {
  uint64_t total = 0;
  walk<fs::recursive_directory_iterator>(dir_, [&](const fs::directory_entry& f) {
    std::error_code ec;
    if (f.is_regular_file(ec) && (f.path().extension() == ".rjk" || is_temp(f.path()))) total += f.file_size(ec);
  });
  return total;
}

uint64_t DiskCache::evict(const std::string& keep) {
  struct File {
    fs::path path;
    fs::file_time_type time;
    uint64_t size;
  };
  std::vector<File> files;
  uint64_t total = 0;
  std::error_code ec;
  const auto now = fs::file_time_type::clock::now();
  ++walk_count;
  walk<fs::recursive_directory_iterator>(dir_, [&](const fs::directory_entry& f) {
    std::error_code e;
    if (!f.is_regular_file(e)) return;
    const bool temp = is_temp(f.path());
    if (!temp && f.path().extension() != ".rjk") return;
    File x{f.path(), f.last_write_time(e), f.file_size(e)};
    if (e) return;  // gone meanwhile (another process's eviction or rename)
    if (temp) {  // a live writer's temporary counts; a dead writer's is removed
      if (now - x.time > kStaleTemp && fs::remove(x.path, e)) return;
      total += x.size;
      return;
    }
    total += x.size;
    files.push_back(x);
  });
  if (total <= max_bytes_) return total;
  const uint64_t target = max_bytes_ / 5 * 4;
  // Oldest first; equal times (file clocks can tick coarser than stores) in path order.
  std::sort(files.begin(), files.end(),
            [](const File& a, const File& b) { return a.time != b.time ? a.time < b.time : a.path < b.path; });
  for (const auto& f : files) {
    if (total <= target) break;
    if (f.path == fs::path(keep)) continue;  // the entry a store just made is never its own victim
    if (fs::remove(f.path, ec)) total -= f.size;
    fs::remove(f.path.parent_path(), ec);  // only succeeds once the key's directory is empty
  }
  return total;
}

}  // namespace ropejit::runtime
