#include "core/stats.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "ropejit/core.hpp"

namespace ropejit {

namespace {
std::atomic<uint64_t> g_generated{0}, g_loaded{0}, g_hits{0}, g_misses{0};
std::atomic<uint64_t> g_layer[3][2];  // [layer][hit]
std::atomic<double> g_codegen_ms{0}, g_load_ms{0}, g_link_ms{0}, g_tm_ms{0}, g_opt_ms{0}, g_emit_ms{0};

}  // namespace

bool logging() {
  static const bool on = [] {
    const char* v = std::getenv("ROPEJIT_LOG");
    return v && *v && std::string(v) != "0";
  }();
  return on;
}

void log_line(const std::string& line) {
  if (logging()) std::fprintf(stderr, "ropejit: %s\n", line.c_str());
}

void record_codegen(double ms) {
  g_generated.fetch_add(1, std::memory_order_relaxed);
  g_codegen_ms.store(ms, std::memory_order_relaxed);
  if (logging()) std::fprintf(stderr, "ropejit: code generation %.2f ms\n", ms);
}
void record_codegen_phases(double target_machine_ms, double optimize_ms, double emit_ms) {
  g_tm_ms.store(target_machine_ms, std::memory_order_relaxed);
  g_opt_ms.store(optimize_ms, std::memory_order_relaxed);
  g_emit_ms.store(emit_ms, std::memory_order_relaxed);
}
void record_module_load(double ms) {
  g_loaded.fetch_add(1, std::memory_order_relaxed);
  g_load_ms.store(ms, std::memory_order_relaxed);
}
void record_link(double ms) { g_link_ms.store(ms, std::memory_order_relaxed); }
void record_memory_hit() { g_hits.fetch_add(1, std::memory_order_relaxed); }
void record_memory_miss() { g_misses.fetch_add(1, std::memory_order_relaxed); }

void record_layer(Layer layer, bool hit, const std::string& what) {
  g_layer[int(layer)][hit ? 1 : 0].fetch_add(1, std::memory_order_relaxed);
  static const char* names[] = {"bundle", "disk cubin", "disk PTX"};
  if (logging()) std::fprintf(stderr, "ropejit: %s %s: %s\n", names[int(layer)], hit ? "hit" : "miss", what.c_str());
}

Stats stats() {
  Stats s;
  s.kernels_generated = g_generated.load();
  s.modules_loaded = g_loaded.load();
  s.memory_hits = g_hits.load();
  s.memory_misses = g_misses.load();
  s.bundle_misses = g_layer[0][0].load();
  s.bundle_hits = g_layer[0][1].load();
  s.disk_cubin_misses = g_layer[1][0].load();
  s.disk_cubin_hits = g_layer[1][1].load();
  s.disk_ptx_misses = g_layer[2][0].load();
  s.disk_ptx_hits = g_layer[2][1].load();
  s.last_codegen_ms = g_codegen_ms.load();
  s.last_target_machine_ms = g_tm_ms.load();
  s.last_optimize_ms = g_opt_ms.load();
  s.last_emit_ms = g_emit_ms.load();
  s.last_load_ms = g_load_ms.load();
  s.last_link_ms = g_link_ms.load();
  return s;
}

void reset_stats() {
  for (auto* a : {&g_generated, &g_loaded, &g_hits, &g_misses}) a->store(0);
  for (auto& l : g_layer)
    for (auto& x : l) x.store(0);
}

}  // namespace ropejit
