#include "ops/stats.hpp"

#include <atomic>
#include <mutex>

#include "ropejit/ropejit.hpp"

namespace ropejit {

namespace {
std::atomic<uint64_t> g_generated{0}, g_loaded{0}, g_hits{0};
std::atomic<double> g_codegen_ms{0}, g_load_ms{0};
}  // namespace

void record_codegen(double ms) {
  g_generated.fetch_add(1, std::memory_order_relaxed);
  g_codegen_ms.store(ms, std::memory_order_relaxed);
}
void record_module_load(double ms) {
  g_loaded.fetch_add(1, std::memory_order_relaxed);
  g_load_ms.store(ms, std::memory_order_relaxed);
}
void record_memory_hit() { g_hits.fetch_add(1, std::memory_order_relaxed); }

Stats stats() {
  Stats s;
  s.kernels_generated = g_generated.load();
  s.modules_loaded = g_loaded.load();
  s.memory_hits = g_hits.load();
  s.last_codegen_ms = g_codegen_ms.load();
  s.last_load_ms = g_load_ms.load();
  return s;
}

}  // namespace ropejit
