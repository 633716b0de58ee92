// Shared by ropejit-bench and ropejit-tune (public API only): the ops they know (a table: each op's
// call, kernel choice and fp64 reference), the benchmark cases, their buffers (random data, rotated
// among enough sets to defeat the L2), and how a case is measured.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>
#include <vector>

#include "ropejit/ropejit.hpp"

namespace ropejit::bench {

struct Case {
  std::string op = "rope";  // "rope" or "qk_norm_rope"
  int64_t batch = 1, seq = 1024;
  DType dtype = DType::bf16;
  int head_dim = 128, q_heads = 32, k_heads = 8;
  RopeStyle style = RopeStyle::neox;
  bool decode = false;  // seq 1 per sequence, positions from int32 ids (as in a decode step)
  bool exact_angles = false;  // cos/sin computed in the kernel (FrequencyTable), no table read
  bool hf_compat = false;     // with exact_angles: from HF's f32 angles (AngleMode::hf_compat)
  int varlen_seqs = 0;        // > 0: the tokens as that many equal sequences packed in one (cu_seqlens)
  bool l2_resident = false;   // one set of buffers, read from the L2 after the first call (not rotated)

  int64_t tokens() const { return batch * seq; }
  // Bytes moved: q and k read and written once, plus the cos/sin rows (or the ids) read (and the
  // norm weights, once).
  double bytes() const;
  std::string series() const;  // everything but the token count
  std::string label() const;   // series and tokens
};

// The default table: the Llama-3-8B shape over decode, 1K, 4K, 16K, 64K tokens, then one axis at a
// time (dtype, head_dim, heads, style) at 16K and 64K.
std::vector<Case> default_cases();
// The cross product of the given axes (empty = the Llama-3-8B value); tokens 64 means a decode step.
std::vector<Case> cross_cases(const std::vector<std::string>& ops, const std::vector<int64_t>& tokens,
                              const std::vector<std::string>& dtypes,
                              const std::vector<int>& head_dims, const std::vector<std::string>& heads,
                              const std::vector<std::string>& styles);

// The case-selection options both tools take: --op --tokens --dtype --head-dim --heads --style.
struct CaseOptions {
  std::vector<std::string> ops;
  std::vector<int64_t> tokens;
  std::vector<std::string> dtypes, heads, styles, angles;
  std::vector<int> head_dims;
  bool l2_resident = false;
  void add_to(CLI::App& app);
  bool any() const {
    return !ops.empty() || !tokens.empty() || !dtypes.empty() || !head_dims.empty() || !heads.empty() ||
           !styles.empty() || !angles.empty() || l2_resident;
  }
  std::vector<Case> cases() const;
};

// Memory for a case on a backend (device memory, or host memory for the CPU backend): `sets`
// copies of q and k with random data, a table and ids.
class Data {
 public:
  Data(const Case& c, int64_t l2_bytes, Backend backend = Backend::cuda);
  int sets() const { return sets_; }
  TensorView q(int set) const;
  TensorView k(int set) const;
  Positions positions() const;
  const CosSinTable& table() const { return table_->view(); }
  // What the kernel rotates with: the table, or (exact angles) the frequencies; and its fp64 reference.
  AngleSource angles() const;
  ReferenceTable reference_table() const;  // host backend data only
  QkNorm norm() const;  // the norm weights (f32 [head_dim], random), for qk_norm_rope
  std::vector<uint8_t> read(bool k, int set) const;  // q's (or k's) bytes of a set, in host memory

 private:
  struct Buffer {  // one of the two, by backend
    std::vector<uint8_t> host;
    DeviceBuffer device;
    void* data() { return host.empty() ? device.data() : host.data(); }
  };
  Buffer make(size_t bytes);
  Case c_;
  Backend backend_;
  int sets_ = 1;
  std::vector<Buffer> q_, k_;
  Buffer ids_, weights_, cu_seqlens_;
  std::unique_ptr<RopeTable> table_;
  std::unique_ptr<FrequencyTable> freqs_;
};

// An op the tools know: one call on a set of a case's data, the kernel it would choose, and the fp64
// reference of one tensor (host memory; `weight` the host copy of its norm weight).
struct Op {
  std::string name;
  void (*run)(const Case& c, const Data& data, int set, const RopeOptions& options, void* stream);
  KernelChoice (*describe)(const Case& c, const Data& data, const RopeOptions& options);
  ReferenceResult (*reference)(const Case& c, const TensorView& x, const Positions& positions,
                               const ReferenceTable& table, const void* weight);
};
const std::vector<Op>& ops();
const Op& op(const std::string& name);  // throws Error naming the known ones

struct Measurement {
  double gpu_us = 0;    // median GPU time per call, by events (CPU backend: wall clock per call)
  double gbps = 0;      // bytes() / gpu time
  double fraction = 0;  // of the copy bandwidth
  double host_us = 0;   // wall clock per call of back-to-back calls (host plus GPU, pipelined)
  double graph_us = 0;  // median GPU time per replay of a one-call CUDA graph
  KernelConfig config;
};

// Measures a case with the given options (their config fields select a candidate, or 0 for the
// default choice). `reps` timed runs after warm-up.
Measurement measure(const Case& c, Data& data, const RopeOptions& options, double copy_gbps, int reps,
                    bool with_host_and_graph = true);

// Copy bandwidth, bytes read plus written, GB/s: cuMemcpyDtoD of 1 GiB on the GPU, memcpy of
// 512 MiB on the host.
double copy_bandwidth_gbps(Backend backend = Backend::cuda);

}  // namespace ropejit::bench
