// What changes the generated code (RopeSpec) and how it is launched (LaunchConfig). Each has a
// canonical key: the in-memory cache hashes the structs; the key text names them in logs and errors.
#pragma once

#include <cstdint>
#include <string>

#include "ropejit/ropejit.hpp"

namespace ropejit::rope {

enum class PositionKind : uint8_t { offset, ids_i32, ids_i64 };

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

struct LaunchConfig {
  int threads = 128;     // per program, a power of two
  int vector_width = 8;  // elements per global access of q/k
  int unroll = 1;        // heads (q and k alike) whose loads are issued before their stores
  std::string key() const;
  bool operator==(const LaunchConfig&) const = default;
};

// The widest vector (elements) a spec allows: 16 bytes of its dtype, dividing the pairs per half.
int max_vector_width(const RopeSpec& spec);
// The heuristic config for a spec, with vector width at most `width_cap` (from pointer alignment).
LaunchConfig heuristic_config(const RopeSpec& spec, int width_cap);
// Checks a config against a spec; throws Error naming what does not fit.
void validate_config(const RopeSpec& spec, const LaunchConfig& config);

// The thread mapping both the generator and the launcher derive from spec + config.
struct Mapping {
  int pairs;        // P = rotary_dim / 2
  int width;        // W elements per access
  int chunks;       // C = P / W chunks per head, one per lane
  int groups;       // G = threads / C head groups
  int pass_width;   // elements per access of the pass-through part (out of place, rotary_dim < head_dim)
  int pass_chunks;  // (head_dim - rotary_dim) / pass_width
};
Mapping mapping(const RopeSpec& spec, const LaunchConfig& config);

size_t hash_value(const RopeSpec& spec);
size_t hash_value(const LaunchConfig& config);

}  // namespace ropejit::rope
