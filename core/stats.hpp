// Counters behind ropejit::stats(): what the caches did, for tests and tools.
#pragma once

#include <string>

namespace ropejit {
void record_codegen(double ms);
// The NVPTX generation's phases: target machine made (0 when reused), optimisation, PTX emission.
void record_codegen_phases(double target_machine_ms, double optimize_ms, double emit_ms);
void record_module_load(double ms);
void record_link(double ms);
void record_memory_hit();
void record_memory_miss();
enum class Layer { bundle, disk_cubin, disk_ptx };
void record_layer(Layer layer, bool hit, const std::string& what);
// Under ROPEJIT_LOG=1: one line on stderr (a fallback that swallowed an error, a file ignored).
bool logging();
void log_line(const std::string& line);
}  // namespace ropejit
