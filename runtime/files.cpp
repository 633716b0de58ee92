#include "runtime/files.hpp"

#include <zlib.h>

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "ropejit/core.hpp"

namespace ropejit::runtime {

namespace fs = std::filesystem;

std::string key_file_name(const std::string& key) {
  std::string s = key;
  for (char& c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_')) c = '_';
  return s;
}

std::string cache_directory() {
  if (const char* d = std::getenv("ROPEJIT_CACHE_DIR"); d && *d) return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return (fs::path(x) / "ropejit").string();
  if (const char* h = std::getenv("HOME"); h && *h) return (fs::path(h) / ".cache" / "ropejit").string();
  std::error_code ec;
  fs::path tmp = fs::temp_directory_path(ec);
  return ((ec ? fs::path("/tmp") : tmp) / "ropejit-cache").string();
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return ss.str();
}

namespace {
std::atomic<WriteStepHook> write_step_hook{nullptr};
void step(const char* name) {
  if (WriteStepHook h = write_step_hook.load(std::memory_order_relaxed)) h(name);
}
}  // namespace

void set_write_step_hook_for_tests(WriteStepHook hook) { write_step_hook.store(hook); }

void write_file_atomically(const std::string& path, const std::string& data) {
  fs::path p(path);
  std::error_code ec;
  if (p.has_parent_path()) fs::create_directories(p.parent_path(), ec);
  if (ec) throw Error(ErrorKind::io, fmt::format("creating {}: {}", p.parent_path().string(), ec.message()));
  // Unique per process and thread: concurrent writers of one path never share a temporary.
  std::random_device rd;
  auto tmp = fmt::format("{}.tmp.{}.{:x}", path, ::getpid(), (uint64_t(rd()) << 32) ^ rd());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(ErrorKind::io, fmt::format("writing {}: {}", tmp, std::strerror(errno)));
  step("before_write");
  size_t done = 0;
  while (done < data.size()) {
    // Under a test's hook the bytes go in two halves, so it can act between them (mid_write).
    const bool halves = write_step_hook.load(std::memory_order_relaxed) && done == 0 && data.size() > 1;
    const size_t chunk = halves ? data.size() / 2 : data.size() - done;
    ssize_t n = ::write(fd, data.data() + done, chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw Error(ErrorKind::io, fmt::format("writing {}: {}", tmp, std::strerror(e)));
    }
    done += size_t(n);
    if (done < data.size()) step("mid_write");
  }
  step("before_rename");
  if (::close(fd) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    throw Error(ErrorKind::io, fmt::format("publishing {}: {}", path, std::strerror(e)));
  }
}

FileLock::FileLock(const std::string& path) {
  std::error_code ec;
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error(ErrorKind::io, fmt::format("locking {}: {}", path, std::strerror(errno)));
  while (::flock(fd_, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    const int e = errno;
    ::close(fd_);
    throw Error(ErrorKind::io, fmt::format("locking {}: {}", path, std::strerror(e)));
  }
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the file releases the lock
}

uint32_t crc32_of(std::string_view data, uint32_t crc) {
  // zlib takes uInt lengths: feed files past 4 GiB in pieces.
  uLong c = crc;
  while (!data.empty()) {
    const size_t n = std::min<size_t>(data.size(), size_t(1) << 30);
    c = crc32(c, reinterpret_cast<const Bytef*>(data.data()), uInt(n));
    data.remove_prefix(n);
  }
  return uint32_t(c);
}

}  // namespace ropejit::runtime
