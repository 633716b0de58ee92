// ropejit's core types: errors, dtypes, backends and strided tensor views. Every other header, and
// the layers below the ops (codegen/, runtime/, jit/), build on this one and see no op.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace ropejit {

// What went wrong, for callers that handle failures by kind (the C API maps these to codes).
enum class ErrorKind : uint8_t {
  invalid_argument,  // bad shapes, strides, dtypes, pointers, options, files of the wrong shape
  no_device,         // no driver, no GPU, or the device asked for does not exist
  unsupported,       // valid, but not something ropejit does (yet) or this build can do
  compile,           // code generation, or the driver rejecting generated code
  driver,            // a CUDA driver call failed
  io,                // reading or writing a file (cache, bundle, tuning file)
  internal,          // a broken invariant inside ropejit: a bug to report
};
const char* error_kind_name(ErrorKind kind);

// Every failure ropejit reports. The message names the problem; no other exception type (JSON,
// filesystem, std) leaves the library.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message, ErrorKind kind = ErrorKind::invalid_argument)
      : std::runtime_error(message), kind_(kind) {}
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

enum class DType : uint8_t { f32, f16, bf16, i32, i64 };
const char* dtype_name(DType t);
int dtype_size(DType t);
bool is_float(DType t);

// Host conversions, round to nearest even (as the kernels round).
uint16_t float_to_bf16(float v);
float bf16_to_float(uint16_t bits);
uint16_t float_to_f16(float v);
float f16_to_float(uint16_t bits);
// Element i of a host array of float dtype `t`, widened to double; and the reverse, rounded once.
double load_as_double(DType t, const void* data, int64_t i);
void store_from_double(DType t, void* data, int64_t i, double v);

// Where a kernel runs. `host` compiles the same IR for this CPU (LLVM ORC) and runs the whole grid
// there; pointers are then host pointers. `cuda` pointers are device pointers.
enum class Backend : uint8_t { cuda, host };

// A strided view [batch, seq, heads, head_dim]; strides are in elements, the innermost is 1.
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

// What happened behind the ops, for tests and tools.
// Lookup order for a GPU kernel: in-memory -> bundle -> disk cubin (same driver) -> disk PTX (driver
// JIT) -> full code generation. Every layer's hits and misses are counted; ROPEJIT_LOG=1 also logs
// each lookup below the in-memory layer, and each fallback, to stderr.
struct Stats {
  uint64_t kernels_generated = 0;  // LLVM code generations (NVPTX or host)
  uint64_t modules_loaded = 0;     // driver loads of a PTX or cubin image
  uint64_t memory_hits = 0, memory_misses = 0;
  uint64_t bundle_hits = 0, bundle_misses = 0;
  uint64_t disk_cubin_hits = 0, disk_cubin_misses = 0;
  uint64_t disk_ptx_hits = 0, disk_ptx_misses = 0;
  double last_codegen_ms = 0;  // IR -> PTX (or host code) of the last generation
  // Its phases (NVPTX): the target machine made (0 when reused), optimisation, PTX emission; the rest
  // of last_codegen_ms built the IR.
  double last_target_machine_ms = 0, last_optimize_ms = 0, last_emit_ms = 0;
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
  int sm = 0;              // e.g. 90
  int driver_version = 0;  // e.g. 13000
  int ptx_isa = 0;         // chosen PTX ISA, e.g. 85
  int multiprocessors = 0;
};
DeviceInfo device_info(int device = 0);

}  // namespace ropejit
