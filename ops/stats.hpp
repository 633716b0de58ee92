// Counters behind ropejit::stats(): what the caches did, for tests and tools.
#pragma once

namespace ropejit {
void record_codegen(double ms);
void record_module_load(double ms);
void record_memory_hit();
}  // namespace ropejit
