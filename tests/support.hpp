// Shared by the test binaries: random tensors in a chosen storage layout, poisoned outputs, one RoPE
// case run on a backend and checked against the fp64 reference.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "ropejit/ropejit.hpp"

namespace ropejit::test {

enum class Layout { bshd, sbhd, bhsd, padded };
const char* layout_name(Layout l);
enum class Pos { offset, ids32, ids64, varlen32, varlen64 };  // varlen: `batch` sequences packed in one

struct Case {
  RopeStyle style = RopeStyle::neox;
  DType dtype = DType::bf16;
  DType table_dtype = DType::f32;
  int head_dim = 128, rotary_dim = 128;
  int q_heads = 32, k_heads = 8;  // k_heads 0: q only
  bool in_place = true;
  Pos pos = Pos::offset;
  Layout layout = Layout::bshd;
  int batch = 2, seq = 5;
  int threads = 0, vector_width = 0, unroll = 0;  // 0: heuristic
  int streaming = -1;                             // -1: heuristic
  int tokens = 0;                                 // tokens per program; 0: heuristic
  bool inverse = false;                           // rotate by -angle (RoPE's backward)
  bool exact_angles = false;                      // cos/sin computed in the kernel (FrequencyTable)
  double theta = 10000.0;
  bool hf_compat = false;                         // with exact_angles: HF's f32 angles (AngleMode::hf_compat)
  int64_t position_base = 0;                      // added to every position (exact angles only)
  int rotary_offset = 0;                          // first rotated dim of a head
  std::optional<DType> out_dtype;                 // out of place: q_out/k_out of another dtype
  std::array<int, 3> mrope_section{};             // multimodal: three ids per token (pos ids32/ids64)
  bool mrope_interleaved = false;
  std::string describe() const;
};

// Host storage of one [batch, seq, heads, head_dim] tensor in a layout, with its view.
struct HostTensor {
  std::vector<uint8_t> bytes;
  TensorView view;  // data points into bytes
  HostTensor(Layout layout, DType dtype, int64_t b, int64_t s, int64_t h, int64_t d);
  HostTensor(const HostTensor& o);
  HostTensor& operator=(const HostTensor&) = delete;
  void fill_random(std::mt19937_64& rng);  // uniform in [-2, 2), never all zero
  void poison();                           // every byte 0xff: NaN in f32, f16 and bf16
};

constexpr int64_t kMaxPosition = 300;

// Everything a case produced: the outputs as host tensors and their comparisons with the reference.
struct CaseResult {
  Comparison q, k;
  bool gaps_untouched = true;  // bytes of the output storage outside the view kept their poison/values
  std::vector<uint8_t> q_out_bytes, k_out_bytes;  // raw output storage, for bitwise comparisons
};

// Whether every byte of a's storage outside its view equals the same byte of b (nothing written
// outside the view).
bool gaps_equal(const HostTensor& a, const std::vector<uint8_t>& b);

// Runs a case on the backend with fresh random data (seeded), poisoned outputs, and checks it.
CaseResult run_case(const Case& c, Backend backend, uint64_t seed);

// The full matrix of the core issue, for one style and dtype.
std::vector<Case> matrix(RopeStyle style, DType dtype);

// doctest checks of one case (q, k, and nothing written outside the outputs), and of a whole matrix.
void check_case(const Case& c, Backend backend, uint64_t seed);
void check_matrix(RopeStyle style, DType dtype, Backend backend);

// Copies of host data on a backend (the host data itself on the host backend), freed together.
class Placement {
 public:
  explicit Placement(Backend backend) : backend_(backend) {}
  void* place(const void* data, size_t bytes);
  // The bytes of a placed copy back into `host` (after a synchronize); nothing on the host backend.
  void fetch(const void* placed, void* host, size_t bytes);

 private:
  Backend backend_;
  std::vector<std::unique_ptr<DeviceBuffer>> buffers_;
};

// Frequency sets chosen per sequence (Frequencies::set_index), on a backend: a varlen batch and a
// dense one, exact and hf_compat, each sequence rotated by its set equals, bit for bit, the same
// tokens rotated by that set alone, which is checked against the fp64 reference; returns the number
// of sequences checked. doctest checks inside.
int check_frequency_sets(Backend backend);

// Prepared calls on a backend (prepared_check.cpp): fused-QKV views with ids, out of place with a
// moving offset, the fused QK-norm op; each launch bit-identical to the unprepared op and checked
// against fp64; bad data refused and nothing written. Returns the launches checked.
int check_prepared_calls(Backend backend);

// The groups reduce_sum(v, lanes) forms in a program of `threads` (language.hpp): each group's first
// thread and size. A spare thread of a packed warp (lanes not a power of two) is a group of its own.
struct LaneGroup {
  int first, size;
  bool spare;
};
std::vector<LaneGroup> lane_groups(int threads, int lanes);

}  // namespace ropejit::test
