// Ahead of time, for every op: tuning records, precompiled kernels, bundles. (Each op declares its
// own precompile in its header.)
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ropejit/core.hpp"

namespace ropejit {

class Kernel;

// ---- Tuning ----

// The best config found for (device, op, spec, token-count bucket), as ropejit-tune stores it.
struct TuningRecord {
  std::string device;  // e.g. "NVIDIA H100 80GB HBM3"
  std::string op;      // "rope", "qk_norm_rope"
  std::string spec_key;
  int64_t token_bucket = 0;  // token_bucket(tokens)
  std::map<std::string, int64_t> config;  // named values, e.g. {"threads": 256, "vector_width": 8}
  double gbps = 0;  // what it achieved when tuned
};
// Tokens rounded up to a power of two: calls of similar size share a tuned config.
int64_t token_bucket(int64_t tokens);
// $ROPEJIT_TUNING_FILE, else tuning.json in the cache directory ($ROPEJIT_CACHE_DIR, else
// $XDG_CACHE_HOME/ropejit, else ~/.cache/ropejit).
std::string tuning_file_path();
// Merges records into the tuning file (a record replaces one with the same device, op, spec and
// bucket), written atomically; the ops use the new records from then on. Throws Error when the file
// exists but is not a valid tuning file (it is never overwritten then).
void save_tuning(const std::vector<TuningRecord>& records, const std::string& path = tuning_file_path());
// Throws Error naming the record and field when the file is not a valid tuning file. (The ops
// themselves ignore such a file, saying so once on stderr, and use the heuristic.)
std::vector<TuningRecord> load_tuning(const std::string& path = tuning_file_path());

// ---- Precompiled kernels: bundles ----

// One kernel made ahead of time for one GPU architecture.
struct PrecompiledKernel {
  std::string key;     // the cache key: op, spec, config, generator hash, LLVM version, sm, PTX ISA
  std::string symbol;  // the kernel's entry in the PTX
  int sm = 0, ptx_isa = 0;
  std::string ptx;
  std::string cubin;   // empty where no driver could make one
};

// Each op declares precompile(spec, sms) in its header: every config it could pick without options
// (the heuristic's at each vector width the memory might allow, and tuned ones from the tuning file),
// as PTX for each sm, and as a cubin where this machine's driver can link one for its own device.
// Needs the full libropejit. A kernel of your own, for each sm:
std::vector<PrecompiledKernel> precompile(const Kernel& kernel, const std::vector<int>& sms);
// A bundle directory: manifest.json and one .ptx (and .cubin) file per kernel.
void write_bundle(const std::string& dir, const std::vector<PrecompiledKernel>& kernels);
// C++ source embedding the kernels; compiling it into a program registers them at start-up.
std::string embed_bundle_source(const std::vector<PrecompiledKernel>& kernels, const std::string& name);
// Entries in the disk cache (PTX always; the cubin under the version of the driver present now).
void store_in_cache(const std::vector<PrecompiledKernel>& kernels);

// Serving bundles: the ops look in them before the disk cache and code generation. In
// libropejit_runtime (no LLVM) they are the only source of kernels. Throws Error (nothing loaded)
// when the directory is not a valid bundle.
void load_bundle(const std::string& dir);
struct EmbeddedKernel {
  const char* key;
  const char* symbol;
  int sm, ptx_isa;
  const unsigned char* ptx;
  unsigned long ptx_size;
  const unsigned char* cubin;
  unsigned long cubin_size;
};
void register_embedded_kernels(const EmbeddedKernel* kernels, unsigned long count);
size_t bundled_kernel_count();

}  // namespace ropejit
