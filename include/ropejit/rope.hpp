// RoPE: rotate q (and k) by each token's position, in place or into outputs.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ropejit/aot.hpp"
#include "ropejit/core.hpp"

namespace ropejit {

enum class RopeStyle : uint8_t {
  neox,  // rotate the two halves: (x[i], x[i + R/2])
  gptj,  // rotate interleaved pairs: (x[2i], x[2i + 1])
};

// Position of token (b, s): `offset + s`, or ids[b * seq + s] (int32 or int64, contiguous [batch, seq]),
// or, for a variable-length batch packed as one sequence of views [1, total_tokens, heads, head_dim]:
// sequence i holds tokens [cu_seqlens[i], cu_seqlens[i + 1]) at positions start_i + (token -
// cu_seqlens[i]), start_i = starts[i] when given, else offset. cu_seqlens (num_seqs + 1 values, from
// 0, non-decreasing, ending at total_tokens) and starts are of ids_dtype, in the backend's memory;
// each token finds its sequence in the kernel.
//
// Multimodal RoPE (Qwen2-VL style, `multimodal`): three ids per token (temporal, height, width) as
// [3, batch, seq] contiguous, and RopeOptions::mrope_section says which pairs each one rotates.
struct Positions {
  int64_t offset = 0;
  const void* ids = nullptr;  // when set, offset is ignored
  DType ids_dtype = DType::i32;
  bool by_ids = false;        // from_ids: `ids` must then be given
  const void* cu_seqlens = nullptr;  // varlen
  const void* starts = nullptr;      // varlen: per-sequence start positions, or null for `offset`
  int64_t num_seqs = 0;              // varlen
  int components = 1;                // multimodal: 3 ids per token
  static Positions contiguous(int64_t offset) { return Positions{offset, nullptr, DType::i32, false}; }
  static Positions from_ids(const void* ids, DType dtype) { return Positions{0, ids, dtype, true}; }
  static Positions varlen(const void* cu_seqlens, DType dtype, int64_t num_seqs, const void* starts = nullptr,
                          int64_t offset = 0) {
    return Positions{offset, nullptr, dtype, false, cu_seqlens, starts, num_seqs};
  }
  static Positions multimodal(const void* ids, DType dtype) {
    return Positions{0, ids, dtype, true, nullptr, nullptr, 0, 3};
  }
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

// Where cos and sin come from: read from a table, computed in the kernel from exact phases, or
// computed in the kernel from HuggingFace's fp32 angles (hf_compat).
enum class AngleMode : uint8_t { table, exact, hf_compat };

// Frequencies the kernel computes cos and sin from, reading nothing but one value per pair; never
// approximate hardware sin/cos.
// `exact` (the default): the phase position x inv_freq / 2pi is formed in 64-bit fixed point, which
// loses nothing to rounding however large the position, then sin and cos come from an accurate
// polynomial (lang::Builder::sincos_turns, within 1.2e-7 of the exact values).
// `hf_compat`: the angle is f32(position) x f32(inv_freq) rounded to f32, as HuggingFace forms it
// (models were trained with those angles), then its sin and cos are taken accurately (the f32 angle
// reduced exactly to turns). Give HF's own fp32 inv_freq to FrequencyTable to match it bit for bit.
// Several sets (LongRoPE's short and long factors, or any per-sequence choice): `sets` of them laid
// out one after another, each with its attention factor, and `set_index` (int32, one per sequence:
// per batch row, or per varlen sequence) says which set rotates each sequence.
struct Frequencies {
  const void* phase_steps = nullptr;  // uint64 [sets][rotary_dim / 2] in the backend's memory: see FrequencyTable
  const void* inv_freq = nullptr;     // f32 [sets][rotary_dim / 2] in the backend's memory (hf_compat)
  AngleMode mode = AngleMode::exact;  // exact or hf_compat
  int64_t rotary_dim = 0;
  float attention_factor = 1.0f;     // multiplies cos and sin (YaRN's and LongRoPE's mscale); one set
  int64_t max_position = int64_t(1) << 32;  // positions in [0, max_position) are rotated
  int64_t sets = 1;
  const void* attention_factors = nullptr;  // f32 [sets], used when sets > 1
  const void* set_index = nullptr;          // int32 per sequence, needed when sets > 1; the backend's memory
};

// Phase steps round(inv_freq[i] / 2pi x 2^64) mod 2^64 computed on the host (in long double: within a
// unit of the last bit), and the f32 inv_freq, uploaded once. Owns its memory.
class FrequencyTable {
 public:
  // `inv_freq`: rotary_dim / 2 inverse frequencies (radians per position), e.g. theta^(-2i/R).
  FrequencyTable(Backend backend, const std::vector<double>& inv_freq, double attention_factor = 1.0,
                 int device = 0);
  // Several sets of rotary_dim / 2 each, one attention factor per set (Frequencies::set_index picks).
  FrequencyTable(Backend backend, const std::vector<std::vector<double>>& inv_freq_sets,
                 const std::vector<double>& attention_factors, int device = 0);
  // The default RoPE frequencies theta^(-2i / rotary_dim).
  static FrequencyTable from_theta(Backend backend, int64_t rotary_dim, double theta, int device = 0);
  ~FrequencyTable();
  FrequencyTable(FrequencyTable&&) noexcept;
  FrequencyTable& operator=(FrequencyTable&&) noexcept;
  FrequencyTable(const FrequencyTable&) = delete;
  FrequencyTable& operator=(const FrequencyTable&) = delete;

  const Frequencies& view() const { return view_; }
  // The same frequencies in another in-kernel mode (exact or hf_compat).
  Frequencies view(AngleMode mode) const;
  // Set `i` alone (one set, its own factor), in `mode`.
  Frequencies set(int64_t i, AngleMode mode = AngleMode::exact) const;
  const std::vector<double>& inv_freq() const { return inv_freq_; }  // every set, one after another
  const std::vector<double>& attention_factors() const { return factors_; }
  const std::vector<uint64_t>& host_steps() const { return steps_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  Frequencies view_;
  std::vector<double> inv_freq_, factors_;
  std::vector<uint64_t> steps_;
  std::vector<float> inv_freq_f32_, factors_f32_;
};

// Fills a cos/sin table [max_position, rotary_dim / 2] (f32 or bf16, in the backend's memory, which
// the caller owns) from frequencies, in a generated kernel with the same phase arithmetic and sin/cos
// as in-kernel angles (times the attention factor): an f32 table gives bit for bit what the exact mode
// computes. On the GPU a million positions take milliseconds. Asynchronous on `stream` (cuda). Needs
// the full libropejit (it generates its kernel), not libropejit_runtime.
CosSinTable fill_table(const Frequencies& frequencies, void* cos, void* sin, DType dtype, int64_t max_position,
                       Backend backend, void* stream = nullptr, int device = 0);

// Where a rotating kernel gets cos and sin: a table it reads (CosSinTable), or frequencies it
// computes them from (Frequencies). Each converts to it implicitly.
struct AngleSource {
  AngleSource(const CosSinTable& t) : table(t) {}
  AngleSource(const Frequencies& f) : frequencies(f), in_kernel(true) {}
  CosSinTable table;
  Frequencies frequencies;
  bool in_kernel = false;
};

struct RopeOptions {
  RopeStyle style = RopeStyle::neox;
  int64_t rotary_dim = 0;  // 0 = head_dim (less rotary_offset)
  // The rotated dims are [rotary_offset, rotary_offset + rotary_dim) of each head; the rest passes
  // through (DeepSeek's MLA: the last 64 of a 192-dim head).
  int64_t rotary_offset = 0;
  // Multimodal RoPE (Positions::multimodal): pairs rotated by the temporal, height and width ids,
  // adding up to rotary_dim / 2. Sections: pairs [0, s0) by t, then s1 by h, then s2 by w (Qwen2-VL).
  // Interleaved (Qwen3-VL): pair i by h when i % 3 == 1 and i < 3 s1, by w when i % 3 == 2 and
  // i < 3 s2, else by t.
  std::array<int, 3> mrope_section{};
  bool mrope_interleaved = false;
  // Rotate by -angle: RoPE's backward (dL/dx = R(-angle) dL/dy, the rotation being orthogonal), or
  // undoing a rotation. RoPE only: the fused QK-norm op refuses it.
  bool inverse = false;
  Backend backend = Backend::cuda;
  // Out of place when set: rotated values and the unchanged part past rotary_dim go here. Their
  // dtype may differ from q's (f32, f16 or bf16, the same for both): bf16 in, f32 out, say.
  std::optional<TensorView> q_out, k_out;
  // Threads per program (0 = heuristic); the autotuner's and tests' hook.
  int threads = 0;
  // Vector width in elements (0 = widest the pointers and strides allow, up to 16 bytes).
  int vector_width = 0;
  // Heads whose loads are issued together (0 = heuristic).
  int unroll = 0;
  // Streaming (evict-first) q/k accesses: -1 = heuristic/tuned, 0 = off, 1 = on.
  int streaming = -1;
  // Tokens per program, each with `threads` threads (0 = heuristic; RoPE only: the fused op takes 1).
  int tokens_per_program = 0;
  // The device whose primary context is used when no context is current (cuda backend).
  int device = 0;
};

// Rotates q (and k, when given) in place, or into options.q_out / k_out. `stream` is a CUstream
// (nullptr = the legacy default stream); it is ignored by the host backend. For the cuda backend the
// current context is used, or device 0's primary context when none is current.
// Throws Error, writing nothing, on bad input.
void apply_rope(const TensorView& q, const TensorView* k, const Positions& positions,
                const AngleSource& angles, const RopeOptions& options, void* stream = nullptr);

// Makes ready the kernel apply_rope would run with these arguments (generated or found, and loaded
// into the current context for the cuda backend) without running it. Nothing may be compiled or
// loaded while a stream is captured into a CUDA graph: warm up with each shape you will capture
// (the config can depend on the token count) first. Checks the arguments as apply_rope does; an
// empty call (0 tokens) has nothing to make ready.
void warm_up(const TensorView& q, const TensorView* k, const Positions& positions, const AngleSource& angles,
             const RopeOptions& options);

enum class PositionKind : uint8_t { offset, ids_i32, ids_i64, varlen_i32, varlen_i64 };

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
  bool inverse = false;             // rotate by -angle (RopeOptions::inverse)
  AngleMode angles = AngleMode::table;  // exact, hf_compat: table_dtype is unused (f32)
  int rotary_offset = 0;            // first rotated dim of a head
  std::optional<DType> out_dtype;   // of q_out and k_out when it differs from dtype (out of place)
  bool frequency_sets = false;      // in-kernel angles: a set of frequencies per sequence (Frequencies::sets)
  std::array<int, 3> mrope_section{};  // multimodal positions when any is non-zero
  bool mrope_interleaved = false;
  int varlen_depth = 0;       // varlen: steps of the kernel's search over cu_seqlens (indices < 2^depth)
  bool varlen_starts = false; // varlen: per-sequence starts read (else one offset)

  int pairs() const { return rotary_dim / 2; }
  DType output_dtype() const { return out_dtype.value_or(dtype); }
  bool multimodal() const { return mrope_section[0] || mrope_section[1] || mrope_section[2]; }
  // Throws Error naming the first field that is out of range.
  void validate() const;
  std::string key() const;
  bool operator==(const RopeSpec&) const = default;
};

// How a rotating kernel is launched: threads per program, elements per q/k access, heads whose
// loads are issued before their stores. Part of the kernel's identity (each config is its own
// specialisation). Shared by RoPE and the fused QK-norm + RoPE op.
struct KernelConfig {
  int threads = 0;       // per program, a power of two
  int vector_width = 0;  // elements per global access of q/k
  int unroll = 0;        // heads (q and k alike) whose loads are issued before their stores
  int streaming = 0;     // 1: q/k accesses of 16 bytes bypass caching (ld/st.global.cs), evicted first
  int tokens = 1;        // tokens per program (RoPE): `threads` each, so a block has threads x tokens
  std::string key() const;  // "t64.w8.u5", "t64.w8.u5.cs" when streaming, "t64.w8.u5.tok4" with 4 tokens
  bool operator==(const KernelConfig&) const = default;
};

// What an op would run for these arguments, without running it (throws on bad input as it does).
struct KernelChoice {
  std::string spec_key;                 // canonical key of the specialisation
  KernelConfig config;                  // the one it would use
  std::string source;                   // "options", "tuned" or "heuristic"
  std::vector<KernelConfig> candidates; // every config these arguments allow, for sweeps
};
KernelChoice describe_kernel(const TensorView& q, const TensorView* k, const Positions& positions,
                             const AngleSource& angles, const RopeOptions& options);

// What changes between the calls of one prepared layout: the data pointers and the positions.
struct RopeData {
  void* q = nullptr;
  void* k = nullptr;      // exactly when prepared with k
  void* q_out = nullptr;  // exactly when prepared out of place
  void* k_out = nullptr;  // exactly when prepared out of place with k
  Positions positions;    // of the prepared kind: an offset, ids of the same dtype, or varlen positions
};

// A call made ready once for one layout (shapes, strides, dtypes, angle source, options) and then
// launched with new data: what an engine does every decode step. prepare_rope checks everything
// apply_rope checks, chooses the config and makes the kernel ready in the current context; launch
// checks only what the data can change (pointers' alignment, overlap by elements, positions' kind and
// range) and launches. Copies share one state; launch is const and thread-safe. The cuda backend
// launches in the context it was prepared in (an Error otherwise), and works under graph capture.
class PreparedCall {
 public:
  PreparedCall() = default;
  // Throws Error, writing nothing, on bad data; an empty call (0 tokens) does nothing.
  void launch(const RopeData& data, void* stream = nullptr) const;
  KernelConfig config() const;  // the config it runs
  std::string spec_key() const;
  explicit operator bool() const { return state_ != nullptr; }

  struct State;

 private:
  friend struct PreparedAccess;
  std::shared_ptr<const State> state_;
};

// RoPE's prepared call: the arguments as apply_rope takes them (their pointers are a first call's
// data; each launch gives its own).
PreparedCall prepare_rope(const TensorView& q, const TensorView* k, const Positions& positions,
                          const AngleSource& angles, const RopeOptions& options);

// A rotating op's config as named values (tuning records), and back (throws Error naming a missing
// or bad value).
std::map<std::string, int64_t> config_values(const KernelConfig& config);
KernelConfig kernel_config_from(const std::map<std::string, int64_t>& values);

// RoPE's kernels made ahead of time (see aot.hpp).
std::vector<PrecompiledKernel> precompile(const RopeSpec& spec, const std::vector<int>& sms);

}  // namespace ropejit
