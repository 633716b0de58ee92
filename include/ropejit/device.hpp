// Device memory and GPU timing, for examples, tools and tests: core types only, no op.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "ropejit/core.hpp"

namespace ropejit {

// Device memory in the current context (or device `device`'s primary one), for examples, tools and
// tests. RAII; copies are synchronous.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes, int device = 0);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& o) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* data() const { return reinterpret_cast<void*>(ptr_); }
  size_t size() const { return bytes_; }
  void upload(const void* src, size_t bytes, size_t offset = 0);
  void download(void* dst, size_t bytes, size_t offset = 0) const;
  void fill(uint8_t byte);
  // Device-to-device copy of `bytes` from `src` (asynchronous on `stream`).
  void copy_from(const DeviceBuffer& src, size_t bytes, void* stream = nullptr);

 private:
  uint64_t ptr_ = 0;
  size_t bytes_ = 0;
};

// GPU time of `fn` (which enqueues work on `stream`): `warmup` untimed runs, then `reps` runs each
// between two events, enqueued behind a kernel that holds the stream until all are queued, so that
// they run back to back at the GPU's pace, not the host's. Returns every sample in milliseconds, sorted.
std::vector<double> time_gpu_ms(const std::function<void()>& fn, int warmup, int reps, void* stream = nullptr);
// The same through a CUDA graph: fn is captured once on a new stream, then the graph is replayed.
std::vector<double> time_graph_ms(const std::function<void(void* stream)>& fn, int warmup, int reps);
void synchronize();

}  // namespace ropejit
