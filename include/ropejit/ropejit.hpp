// ropejit: JIT-generated Rotary Positional Embedding kernels.
//
// The whole public API. Tensors are strided views [batch, seq, heads, head_dim] with any batch, seq
// and head stride (innermost stride 1), so [B,S,H,D], [S,B,H,D] and [B,H,S,D] storage all work
// without copies. One program (CTA) per token; the kernel is specialised on everything in RopeSpec.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace ropejit {

// Every failure: bad arguments, no driver, PTX the driver rejects. The message names the problem.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class DType : uint8_t { f32, f16, bf16, i32, i64 };
const char* dtype_name(DType t);
int dtype_size(DType t);

// Host conversions, round to nearest even (as the kernels round).
uint16_t float_to_bf16(float v);
float bf16_to_float(uint16_t bits);
uint16_t float_to_f16(float v);
float f16_to_float(uint16_t bits);
// Element i of a host array of float dtype `t`, widened to double; and the reverse, rounded once.
double load_as_double(DType t, const void* data, int64_t i);
void store_from_double(DType t, void* data, int64_t i, double v);

enum class RopeStyle : uint8_t {
  neox,  // rotate the two halves: (x[i], x[i + R/2])
  gptj,  // rotate interleaved pairs: (x[2i], x[2i + 1])
};

// Where the kernel runs. `host` compiles the same IR for this CPU (LLVM ORC) and runs the whole grid
// there; pointers are then host pointers. `cuda` pointers are device pointers.
enum class Backend : uint8_t { cuda, host };

// A strided view [batch, seq, heads, head_dim]; strides are in elements.
struct TensorView {
  void* data = nullptr;
  DType dtype = DType::bf16;
  int64_t batch = 1, seq = 0, heads = 0, head_dim = 0;
  int64_t stride_batch = 0, stride_seq = 0, stride_head = 0;

  // Contiguous [batch, seq, heads, head_dim] storage.
  static TensorView bshd(void* data, DType dtype, int64_t batch, int64_t seq, int64_t heads, int64_t head_dim);
  // Contiguous [seq, batch, heads, head_dim] storage.
  static TensorView sbhd(void* data, DType dtype, int64_t batch, int64_t seq, int64_t heads, int64_t head_dim);
  // Contiguous [batch, heads, seq, head_dim] storage.
  static TensorView bhsd(void* data, DType dtype, int64_t batch, int64_t seq, int64_t heads, int64_t head_dim);
  int64_t tokens() const { return batch * seq; }
};

// Position of token (b, s): `offset + s`, or ids[b * seq + s] (int32 or int64, contiguous [batch, seq]).
struct Positions {
  int64_t offset = 0;
  const void* ids = nullptr;  // when set, offset is ignored
  DType ids_dtype = DType::i32;
  static Positions contiguous(int64_t offset) { return Positions{offset, nullptr, DType::i32}; }
  static Positions from_ids(const void* ids, DType dtype) { return Positions{0, ids, dtype}; }
};

// cos/sin tables, each [max_position, rotary_dim / 2] contiguous, f32 or bf16, in the backend's memory.
struct CosSinTable {
  const void* cos = nullptr;
  const void* sin = nullptr;
  DType dtype = DType::f32;
  int64_t max_position = 0;
  int64_t rotary_dim = 0;
};

// A table built on the host in fp64 (angle p * theta^(-2i/R), cos/sin in fp64, rounded once to the
// table dtype) and uploaded once. Owns its memory.
class RopeTable {
 public:
  RopeTable(Backend backend, int64_t max_position, int64_t rotary_dim, double theta = 10000.0,
            DType dtype = DType::f32, int device = 0);
  ~RopeTable();
  RopeTable(RopeTable&&) noexcept;
  RopeTable& operator=(RopeTable&&) noexcept;
  RopeTable(const RopeTable&) = delete;
  RopeTable& operator=(const RopeTable&) = delete;

  const CosSinTable& view() const { return view_; }
  Backend backend() const { return backend_; }
  // The host copy the table was uploaded from (raw table-dtype bytes, cos then sin).
  const std::vector<uint8_t>& host_cos() const { return host_cos_; }
  const std::vector<uint8_t>& host_sin() const { return host_sin_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  Backend backend_;
  CosSinTable view_;
  std::vector<uint8_t> host_cos_, host_sin_;
};

struct RopeOptions {
  RopeStyle style = RopeStyle::neox;
  int64_t rotary_dim = 0;  // 0 = head_dim
  Backend backend = Backend::cuda;
  // Out of place when set: rotated values and the unchanged part past rotary_dim go here.
  std::optional<TensorView> q_out, k_out;
  // Cap on threads per program (0 = heuristic); the autotuner's and tests' hook.
  int threads = 0;
  // Vector width in elements (0 = widest the pointers and strides allow, up to 16 bytes).
  int vector_width = 0;
  // Heads whose loads are issued together (0 = heuristic).
  int unroll = 0;
  // Streaming (evict-first) q/k accesses: -1 = heuristic/tuned, 0 = off, 1 = on.
  int streaming = -1;
  // The device whose primary context is used when no context is current (cuda backend).
  int device = 0;
};

// Rotates q (and k, when given) in place, or into options.q_out / k_out. `stream` is a CUstream
// (nullptr = the legacy default stream); it is ignored by the host backend. For the cuda backend the
// current context is used, or device 0's primary context when none is current.
// Throws Error, writing nothing, on bad input.
void apply_rope(const TensorView& q, const TensorView* k, const Positions& positions,
                const CosSinTable& table, const RopeOptions& options, void* stream = nullptr);

// ---- The fp64 reference, for checking kernels (host memory only) ----

// cos/sin as doubles, [max_position, rotary_dim / 2].
struct ReferenceTable {
  int64_t max_position = 0, rotary_dim = 0;
  std::vector<double> cos, sin;
  // Angles and cos/sin in fp64, never rounded to a table dtype.
  static ReferenceTable exact(int64_t max_position, int64_t rotary_dim, double theta);
  // The values a table holds (host memory), widened to fp64: what a kernel reading it should use.
  static ReferenceTable from(const CosSinTable& host_table);
};

// Expected output of one tensor, dense [batch, seq, heads, head_dim].
struct ReferenceResult {
  std::vector<double> value;
  // Per element |x1 cos| + |x2 sin|: the scale of the fp32 arithmetic's error; 0 where the element
  // passes through unchanged (it must then be bit-exact).
  std::vector<double> scale;
};
ReferenceResult reference_rope(const TensorView& x, const Positions& positions, const ReferenceTable& table,
                               RopeStyle style, int64_t rotary_dim);

// Compares a kernel's output view (host memory) with the reference. Tolerance per element:
// 2^-22 * scale for the fp32 arithmetic, plus half an ulp of the output dtype (f16/bf16 rounding).
struct Comparison {
  int64_t checked = 0, mismatches = 0;
  double max_error_in_tolerances = 0;  // worst |out - ref| / tolerance (<= 1 passes)
  std::string first_mismatch;           // "[b,s,h,d]: got .. expected .." when any
  bool ok() const { return mismatches == 0 && checked > 0; }
};
Comparison compare_to_reference(const TensorView& out, const ReferenceResult& ref);

// ---- Specialisations, configs and tuning ----

enum class PositionKind : uint8_t { offset, ids_i32, ids_i64 };

// Everything that changes the generated code: one specialisation per distinct spec (and config).
struct RopeSpec {
  int head_dim = 128;
  int rotary_dim = 128;
  RopeStyle style = RopeStyle::neox;
  DType dtype = DType::bf16;        // of q and k
  DType table_dtype = DType::f32;   // of cos and sin
  int q_heads = 32;
  int k_heads = 0;                  // 0: q only
  bool in_place = true;
  PositionKind positions = PositionKind::offset;

  int pairs() const { return rotary_dim / 2; }
  // Throws Error naming the first field that is out of range.
  void validate() const;
  std::string key() const;
  bool operator==(const RopeSpec&) const = default;
};



// How a kernel is launched: threads per program, elements per q/k access, heads whose loads are
// issued before their stores. Part of the kernel's identity (each config is its own specialisation).
struct KernelConfig {
  int threads = 0;       // per program, a power of two
  int vector_width = 0;  // elements per global access of q/k
  int unroll = 0;        // heads (q and k alike) whose loads are issued before their stores
  int streaming = 0;     // 1: q/k accesses of 16 bytes bypass caching (ld/st.global.cs), evicted first
  std::string key() const;  // "t64.w8.u5", or "t64.w8.u5.cs" when streaming
  bool operator==(const KernelConfig&) const = default;
};

// What apply_rope would run for these arguments, without running it (throws on bad input as it does).
struct KernelChoice {
  std::string spec_key;                 // canonical key of the specialisation
  KernelConfig config;                  // the one it would use
  std::string source;                   // "options", "tuned" or "heuristic"
  std::vector<KernelConfig> candidates; // every config these arguments allow, for sweeps
};
KernelChoice describe_kernel(const TensorView& q, const TensorView* k, const Positions& positions,
                             const CosSinTable& table, const RopeOptions& options);

// The best config found for (device, spec, token-count bucket), as ropejit-tune stores it.
struct TuningRecord {
  std::string device;  // e.g. "NVIDIA H100 80GB HBM3"
  std::string spec_key;
  int64_t token_bucket = 0;  // token_bucket(tokens)
  KernelConfig config;
  double gbps = 0;  // what it achieved when tuned
};
// Tokens rounded up to a power of two: calls of similar size share a tuned config.
int64_t token_bucket(int64_t tokens);
// $ROPEJIT_TUNING_FILE, else tuning.json in the cache directory ($ROPEJIT_CACHE_DIR, else
// $XDG_CACHE_HOME/ropejit, else ~/.cache/ropejit).
std::string tuning_file_path();
// Merges records into the tuning file (a record replaces one with the same device, spec and bucket),
// written atomically; apply_rope uses the new records from then on.
void save_tuning(const std::vector<TuningRecord>& records, const std::string& path = tuning_file_path());
std::vector<TuningRecord> load_tuning(const std::string& path = tuning_file_path());

// ---- Precompiled kernels: bundles ----

// One kernel made ahead of time for one GPU architecture.
struct PrecompiledKernel {
  std::string key;     // the cache key: spec, config, generator and LLVM versions, sm, PTX ISA
  std::string symbol;  // the kernel's entry in the PTX
  int sm = 0, ptx_isa = 0;
  std::string ptx;
  std::string cubin;   // empty where neither a driver nor ptxas could make one
};

// Kernels for `spec` on each sm: every config apply_rope could pick without options (the heuristic's
// at each vector width the memory might allow, and tuned ones from the tuning file), as PTX, and as a
// cubin where this machine's driver can link one for its own device. Needs the full libropejit.
std::vector<PrecompiledKernel> precompile(const RopeSpec& spec, const std::vector<int>& sms);
// A bundle directory: manifest.json and one .ptx (and .cubin) file per kernel.
void write_bundle(const std::string& dir, const std::vector<PrecompiledKernel>& kernels);
// C++ source embedding the kernels; compiling it into a program registers them at start-up.
std::string embed_bundle_source(const std::vector<PrecompiledKernel>& kernels, const std::string& name);
// Entries in the disk cache (PTX always; the cubin under the version of the driver present now).
void store_in_cache(const std::vector<PrecompiledKernel>& kernels);

// Serving bundles: apply_rope looks in them before the disk cache and code generation. In
// libropejit_runtime (no LLVM) they are the only source of kernels.
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

// What happened behind apply_rope, for tests and tools.
// Lookup order for a GPU kernel: in-memory -> bundle -> disk cubin (same driver) -> disk PTX (driver
// JIT) -> full code generation. Every layer's hits and misses are counted; ROPEJIT_LOG=1 also logs
// each lookup below the in-memory layer to stderr.
struct Stats {
  uint64_t kernels_generated = 0;  // LLVM code generations (NVPTX or host)
  uint64_t modules_loaded = 0;     // cuModuleLoadDataEx calls
  uint64_t memory_hits = 0, memory_misses = 0;
  uint64_t bundle_hits = 0, bundle_misses = 0;
  uint64_t disk_cubin_hits = 0, disk_cubin_misses = 0;
  uint64_t disk_ptx_hits = 0, disk_ptx_misses = 0;
  double last_codegen_ms = 0;  // IR -> PTX (or host code) of the last generation
  double last_load_ms = 0;     // driver load (PTX JIT or cubin) of the last module
  double last_link_ms = 0;     // PTX -> cubin by the driver's linker (its PTX JIT) of the last kernel
};
void reset_stats();
Stats stats();

// Facts about the GPU, or why there is none.
struct DeviceInfo {
  bool available = false;
  std::string reason;  // why not, when unavailable
  std::string name;
  int sm = 0;          // e.g. 90
  int driver_version = 0;  // e.g. 13000
  int ptx_isa = 0;     // chosen PTX ISA, e.g. 85
  int multiprocessors = 0;
};
DeviceInfo device_info(int device = 0);

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
// between two events. Returns every sample in milliseconds, sorted.
std::vector<double> time_gpu_ms(const std::function<void()>& fn, int warmup, int reps, void* stream = nullptr);
// The same through a CUDA graph: fn is captured once on a new stream, then the graph is replayed.
std::vector<double> time_graph_ms(const std::function<void(void* stream)>& fn, int warmup, int reps);
void synchronize();

}  // namespace ropejit
