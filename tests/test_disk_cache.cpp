// The disk cache without a GPU: entry encoding and every way an entry can be bad, atomic publication
// under many threads and processes, the size bound, and the precompile path into the cache.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <sys/wait.h>
#include <csignal>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "internal.hpp"
#include "ropejit/ropejit.hpp"
#include "runtime/disk_cache.hpp"
#include "runtime/files.hpp"

using namespace ropejit;
using namespace ropejit::runtime;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  // Unique per case too: the cache's per-process size tally is keyed by the directory.
  static inline int count = 0;
  fs::path path = fs::temp_directory_path() /
                  ("ropejit-cache-test-" + std::to_string(::getpid()) + "-" + std::to_string(count++));
  TempDir() { fs::remove_all(path); }
  ~TempDir() { fs::remove_all(path); }
};

int count_files(const fs::path& dir, const std::string& ext) {
  int n = 0;
  for (const auto& f : fs::recursive_directory_iterator(dir))
    if (f.is_regular_file() && (ext.empty() || f.path().extension() == ext)) ++n;
  return n;
}

RopeSpec spec_with(int heads) {
  RopeSpec s;
  s.q_heads = heads;
  s.k_heads = 1;
  s.head_dim = 64;
  s.rotary_dim = 64;
  return s;
}

}  // namespace

TEST_CASE("cache entries: round trip; truncated, corrupted and foreign entries read as misses") {
  CacheEntry e{"// ptx text\n.version 8.5\n", std::string("\x7f" "ELF\0\1\2", 7)};
  auto bytes = encode_entry("key-a", e);
  auto back = decode_entry(bytes, "key-a");
  REQUIRE(back.has_value());
  CHECK(back->ptx == e.ptx);
  CHECK(back->cubin == e.cubin);
  CHECK_FALSE(decode_entry(bytes, "key-b").has_value());                         // foreign
  CHECK_FALSE(decode_entry(bytes.substr(0, bytes.size() - 1), "key-a").has_value());  // truncated
  CHECK_FALSE(decode_entry(bytes + "x", "key-a").has_value());                    // padded
  std::string flipped = bytes;
  flipped[flipped.size() - 3] ^= 0x20;
  CHECK_FALSE(decode_entry(flipped, "key-a").has_value());  // corrupted payload
  CHECK_FALSE(decode_entry("", "key-a").has_value());
  CHECK_FALSE(decode_entry("ropejit-cache-1\nkey-a\n", "key-a").has_value());
}

TEST_CASE("disk cache: cubin and PTX layers, a hand-corrupted entry is a miss and is replaced") {
  TempDir tmp;
  DiskCache cache(tmp.path.string());
  CHECK_FALSE(cache.load_ptx("k1").has_value());
  cache.store("k1", 0, CacheEntry{"ptx-only", ""});
  CHECK(cache.load_ptx("k1") == std::optional<std::string>("ptx-only"));
  CHECK_FALSE(cache.load_cubin("k1", 13000).has_value());  // PTX only: the driver must JIT it
  cache.store("k2", 13000, CacheEntry{"ptx2", "cubin2"});
  CHECK(cache.load_cubin("k2", 13000)->cubin == "cubin2");
  CHECK_FALSE(cache.load_cubin("k2", 12080).has_value());  // another driver: not its cubin...
  CHECK(cache.load_ptx("k2") == std::optional<std::string>("ptx2"));  // ...but the PTX serves

  // Corrupt the cubin entry by hand: both layers miss, a rebuild replaces it.
  fs::path entry;
  for (const auto& f : fs::recursive_directory_iterator(tmp.path))
    if (f.path().filename() == "driver13000.rjk") entry = f.path();
  REQUIRE(!entry.empty());
  {
    std::fstream f(entry, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-2, std::ios::end);
    f.put('#');
  }
  CHECK_FALSE(cache.load_cubin("k2", 13000).has_value());
  CHECK_FALSE(cache.load_ptx("k2").has_value());
  cache.store("k2", 13000, CacheEntry{"ptx2", "cubin2"});
  CHECK(cache.load_cubin("k2", 13000)->cubin == "cubin2");
  // Truncated to nothing, and a foreign file under the right name: misses too.
  std::ofstream(entry, std::ios::trunc).close();
  CHECK_FALSE(cache.load_cubin("k2", 13000).has_value());
  write_file_atomically(entry.string(), encode_entry("someone-else|driver13000", CacheEntry{"p", "c"}));
  CHECK_FALSE(cache.load_cubin("k2", 13000).has_value());

  DiskCache off("");
  off.store("k3", 0, CacheEntry{"x", ""});
  CHECK_FALSE(off.load_ptx("k3").has_value());
}

TEST_CASE("disk cache: the size bound evicts the least recently used entries first") {
  TempDir tmp;
  const std::string payload(1000, 'p');
  DiskCache big(tmp.path.string());
  for (int i = 0; i < 5; ++i) {
    big.store("k" + std::to_string(i), 0, CacheEntry{payload, ""});
    // Distinct, increasing times; then k0 is used, so k1 is the least recent.
    for (const auto& f : fs::recursive_directory_iterator(tmp.path))
      if (f.path().parent_path().filename() == "k" + std::to_string(i))
        fs::last_write_time(f.path(), fs::file_time_type::clock::now() - std::chrono::hours(10 - i));
  }
  CHECK(big.load_ptx("k0").has_value());
  DiskCache small(tmp.path.string(), 3 * 1100);
  small.store("k5", 0, CacheEntry{payload, ""});
  CHECK(small.total_bytes() <= 3 * 1100);
  CHECK(small.load_ptx("k5").has_value());
  CHECK(small.load_ptx("k0").has_value());
  CHECK_FALSE(small.load_ptx("k1").has_value());
  CHECK_FALSE(small.load_ptx("k2").has_value());
}

TEST_CASE("disk cache: threads and processes compiling the same and different specs into one directory") {
  TempDir tmp;
  ::setenv("ROPEJIT_CACHE_DIR", tmp.path.c_str(), 1);
  // 3 processes x 4 threads; each compiles 3 specs, two shared by everyone and one of its own.
  auto work = [](int id) {
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([id, t] {
        for (int heads : {2, 3, 10 + id * 4 + t}) store_in_cache(precompile(spec_with(heads), {80}));
      });
    for (auto& t : threads) t.join();
  };
  std::vector<pid_t> children;
  for (int p = 1; p < 3; ++p) {
    pid_t pid = ::fork();
    if (pid == 0) {
      try {
        work(p);
        ::_exit(0);
      } catch (...) {
        ::_exit(1);
      }
    }
    children.push_back(pid);
  }
  work(0);
  for (pid_t pid : children) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  }
  // Every entry is valid and holds exactly the PTX a fresh generation gives; no temporaries remain.
  DiskCache cache(tmp.path.string());
  int checked = 0;
  for (int heads : {2, 3, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21}) {
    auto spec = spec_with(heads);
    for (const auto& k : precompile(spec, {80})) {
      auto ptx = cache.load_ptx(k.key);
      REQUIRE_MESSAGE(ptx.has_value(), k.key);
      CHECK(*ptx == k.ptx);
      ++checked;
    }
  }
  CHECK(checked >= 14);
  CHECK(count_files(tmp.path, ".rjk") == checked);
  CHECK(count_files(tmp.path, "") == checked);
  ::unsetenv("ROPEJIT_CACHE_DIR");
}

TEST_CASE("cache keys cover what changes the bytes") {
  RopeSpec s;
  rope::LaunchConfig c{256, 8, 2};
  auto k = test::rope_ptx_key(s, c, {90, 85});
  CHECK(k.find(s.key()) != std::string::npos);
  CHECK(k.find("t256.w8.u2") != std::string::npos);
  CHECK(k.find("sm90") != std::string::npos);
  CHECK(k.find("ptx85") != std::string::npos);
  CHECK(k.find("llvm19") != std::string::npos);
  // The generator's version is a hash of its sources, made at build time.
  CHECK(std::string(jit::generator_hash()).size() == 16);
  CHECK(k.find(std::string("gen") + jit::generator_hash()) != std::string::npos);
  CHECK(k != test::rope_ptx_key(s, c, {80, 85}));
  CHECK(k != test::rope_ptx_key(s, c, {90, 84}));
  CHECK(k != test::rope_ptx_key(s, rope::LaunchConfig{128, 8, 2}, {90, 85}));
}

TEST_CASE("ROPEJIT_CACHE_MAX_BYTES that is not a byte count keeps the default bound (never 0)") {
  TempDir tmp;
  ::setenv("ROPEJIT_CACHE_DIR", tmp.path.c_str(), 1);
  ::unsetenv("ROPEJIT_CACHE");
  for (const char* bad : {"1k", "abc", "-5"}) {
    ::setenv("ROPEJIT_CACHE_MAX_BYTES", bad, 1);
    auto cache = DiskCache::from_env();
    cache.store(std::string("key.") + bad, 0, CacheEntry{"ptx text", ""});
    CHECK(cache.load_ptx(std::string("key.") + bad).has_value());  // not evicted by a bound of 0
  }
  ::setenv("ROPEJIT_CACHE_MAX_BYTES", "1", 1);  // a real, tiny bound still evicts all but the entry just stored
  auto tiny = DiskCache::from_env();
  tiny.store("key.tiny", 0, CacheEntry{"ptx text", ""});
  CHECK(tiny.total_bytes() == encode_entry("key.tiny|ptx", CacheEntry{"ptx text", ""}).size());
  CHECK_FALSE(tiny.load_ptx("key.1k").has_value());
  CHECK(tiny.load_ptx("key.tiny").has_value());
  ::unsetenv("ROPEJIT_CACHE_MAX_BYTES");
  ::unsetenv("ROPEJIT_CACHE_DIR");
}

TEST_CASE("cache entries: a crafted header whose sizes wrap around reads as a miss") {
  auto good = encode_entry("k", CacheEntry{"abc", "de"});
  auto first = good.find('\n'), second = good.find('\n', first + 1), third = good.find('\n', second + 1);
  std::string crafted = good.substr(0, second + 1) + "18446744073709551615 6 0" + good.substr(third);
  CHECK_FALSE(decode_entry(crafted, "k").has_value());
  CHECK(decode_entry(good, "k").has_value());
}

TEST_CASE("disk cache: what a writer killed at each step leaves; stale temporaries go, live ones count") {
  TempDir tmp;
  const std::string payload(1000, 'p');
  DiskCache cache(tmp.path.string(), 4 * 1100);
  cache.store("a", 0, CacheEntry{payload, ""});
  const fs::path dir = tmp.path / "a";
  auto temp = [&](const std::string& name, size_t bytes, std::chrono::minutes age) {
    const fs::path p = dir / name;
    std::ofstream(p, std::ios::binary) << std::string(bytes, 't');
    fs::last_write_time(p, fs::file_time_type::clock::now() - age);
    return p;
  };
  // Killed before writing: nothing. Mid-write: a partial temporary. Before the rename: a whole one.
  // Neither is an entry: lookups of their key still miss.
  const fs::path partial_old = temp("driver7.rjk.tmp.111.aa", 300, std::chrono::minutes(30));
  const fs::path whole_old = temp("driver8.rjk.tmp.222.bb", 1060, std::chrono::minutes(30));
  const fs::path live = temp("driver9.rjk.tmp.333.cc", 1500, std::chrono::minutes(0));
  CHECK_FALSE(cache.load_cubin("a", 7).has_value());
  CHECK_FALSE(cache.load_cubin("a", 8).has_value());
  CHECK(cache.total_bytes() > 3800);  // temporaries are counted
  // Once this process's stores pass the bound it walks the directory (as a new process's first
  // store does): the dead writers' temporaries are removed, the live one is kept and counted, and the
  // least recent entries make room down to 80% of the bound.
  fs::last_write_time(dir / "ptx.rjk", fs::file_time_type::clock::now() - std::chrono::hours(1));
  int age = 40;  // distinct times, oldest first (file clocks can tick coarser than these stores)
  for (const char* key : {"b", "c", "d"}) {
    cache.store(key, 0, CacheEntry{payload, ""});
    fs::last_write_time(tmp.path / key / "ptx.rjk", fs::file_time_type::clock::now() - std::chrono::minutes(age -= 10));
  }
  cache.store("e", 0, CacheEntry{payload, ""});  // the entry just stored is never the one evicted
  CHECK_FALSE(fs::exists(partial_old));
  CHECK_FALSE(fs::exists(whole_old));
  CHECK(fs::exists(live));
  CHECK(cache.total_bytes() <= 4 * 1100);
  CHECK_FALSE(cache.load_ptx("a").has_value());  // the least recent entry went first
  CHECK(cache.load_ptx("e").has_value());
}

TEST_CASE("disk cache: storing into a full cache walks it about once per fifth of the bound, not per store") {
  TempDir tmp;
  const std::string payload(1000, 'p');
  const uint64_t entry = encode_entry("k000|ptx", CacheEntry{payload, ""}).size();
  DiskCache cache(tmp.path.string(), 50 * entry);
  const uint64_t before = DiskCache::walks();
  for (int i = 0; i < 300; ++i) cache.store(fmt::format("k{:03}", i), 0, CacheEntry{payload, ""});
  const uint64_t walks = DiskCache::walks() - before;
  MESSAGE(walks << " walks for 300 stores into a bound of 50 entries");
  CHECK(cache.total_bytes() <= 50 * entry);
  CHECK(count_files(tmp.path, ".rjk") >= 40);  // evicted to 80%, not emptied
  // Each walk over the bound removes a fifth of it (10 entries): 250 removals need ~25 walks, plus
  // the first. A walk per store would be 300.
  CHECK(walks <= 30);
  CHECK(cache.load_ptx("k299").has_value());
}

TEST_CASE("bundles: each file's CRC-32 is checked; sm and ptx_isa must be whole numbers; format 1 is refused") {
  TempDir tmp;
  RopeSpec spec = spec_with(3);
  const auto kernels = precompile(spec, {90});
  REQUIRE(!kernels.empty());
  const fs::path dir = tmp.path / "bundle";
  write_bundle(dir.string(), kernels);
  load_bundle(dir.string());  // as written: fine
  const std::string manifest = *read_file((dir / "manifest.json").string());
  CHECK(manifest.find("\"ptx_crc32\"") != std::string::npos);
  auto with_manifest = [&](const std::string& from, const std::string& to) {
    std::string m = manifest;
    const size_t at = m.find(from);
    REQUIRE(at != std::string::npos);
    m.replace(at, from.size(), to);
    write_file_atomically((dir / "manifest.json").string(), m);
  };
  with_manifest("\"sm\": 90", "\"sm\": \"90\"");
  CHECK_THROWS_WITH_AS(load_bundle(dir.string()), doctest::Contains("\"sm\" is not a whole number"), Error);
  with_manifest("\"ptx_isa\": ", "\"ptx_isa\": null, \"was\": ");
  CHECK_THROWS_WITH_AS(load_bundle(dir.string()), doctest::Contains("\"ptx_isa\""), Error);
  with_manifest("\"ptx_crc32\": ", "\"ptx_crc32\": 1, \"was\": ");
  CHECK_THROWS_WITH_AS(load_bundle(dir.string()), doctest::Contains("does not match its checksum"), Error);
  with_manifest("ropejit-bundle-2", "ropejit-bundle-1");
  CHECK_THROWS_WITH_AS(load_bundle(dir.string()), doctest::Contains("format 1"), Error);
  // A PTX file changed on disk (one byte) is refused, and the manifest as written is fine again after.
  with_manifest("ropejit-bundle-2", "ropejit-bundle-2");
  fs::path ptx;
  for (const auto& f : fs::directory_iterator(dir))
    if (f.path().extension() == ".ptx") ptx = f.path();
  std::string bytes = *read_file(ptx.string());
  bytes[bytes.size() / 2] ^= 1;
  write_file_atomically(ptx.string(), bytes);
  CHECK_THROWS_WITH_AS(load_bundle(dir.string()), doctest::Contains("does not match its checksum"), Error);
}

TEST_CASE("disk cache: writers SIGKILLed before writing, mid-write and before the rename publish nothing") {
  TempDir tmp;
  const std::string payload(4000, 'p');
  for (const char* step : {"before_write", "mid_write", "before_rename"}) {
    INFO(step);
    pid_t pid = ::fork();
    if (pid == 0) {
      static const char* kill_at;
      kill_at = step;
      set_write_step_hook_for_tests([](const char* now) {
        if (std::strcmp(now, kill_at) == 0) ::kill(::getpid(), SIGKILL);
      });
      DiskCache(tmp.path.string()).store(std::string("killed-") + step, 0, CacheEntry{payload, ""});
      ::_exit(0);  // not reached: the hook kills the process
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    REQUIRE(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGKILL);
    DiskCache cache(tmp.path.string());
    CHECK_FALSE(cache.load_ptx(std::string("killed-") + step).has_value());  // no entry, torn or whole
    // What remains: one temporary (empty, half or whole) and no entry file.
    const fs::path dir = tmp.path / (std::string("killed-") + step);
    int temps = 0, entries = 0;
    uintmax_t temp_bytes = 0;
    for (const auto& f : fs::directory_iterator(dir)) {
      const std::string name = f.path().filename().string();
      if (name.find(".rjk.tmp.") != std::string::npos) ++temps, temp_bytes = f.file_size();
      if (f.path().extension() == ".rjk") ++entries;
    }
    CHECK(temps == 1);
    CHECK(entries == 0);
    const uintmax_t whole = encode_entry(std::string("killed-") + step + "|ptx", CacheEntry{payload, ""}).size();
    CHECK(temp_bytes == (std::string(step) == "before_write" ? 0 : std::string(step) == "mid_write" ? whole / 2 : whole));
    // A live process then stores the same key normally.
    cache.store(std::string("killed-") + step, 0, CacheEntry{payload, ""});
    CHECK(cache.load_ptx(std::string("killed-") + step).has_value());
  }
}
