// What changes the generated code (RopeSpec) and how it is launched (LaunchConfig). Each has a
// canonical key: the in-memory cache hashes the structs; the key text names them in logs and errors.
#pragma once

#include <cstdint>
#include <string>

#include "ropejit/rope.hpp"

namespace ropejit::rope {

// RopeSpec, PositionKind and KernelConfig (LaunchConfig here) live in the public header.
using ropejit::PositionKind;
using ropejit::RopeSpec;
using LaunchConfig = KernelConfig;

// The widest vector (elements) a spec allows: 16 bytes of its dtype, dividing the pairs per half.
int max_vector_width(const RopeSpec& spec);
// The heuristic config for a spec, with vector width at most `width_cap` (from pointer alignment).
// `bytes_moved` (q and k read and written) and `l2_bytes` (0: not a GPU) decide streaming hints.
// `norm`: for the kernels that normalise each head (QK-norm + RoPE), whose lanes per head are padded
// to a power of two for the reduction over them.
LaunchConfig heuristic_config(const RopeSpec& spec, int width_cap, double bytes_moved = 0, int64_t l2_bytes = 0,
                              bool norm = false);
// Checks a config against a spec; throws Error naming what does not fit.
void validate_config(const RopeSpec& spec, const LaunchConfig& config, bool norm = false);
// Lanes (threads) per head: one per chunk of W pairs; a power of two for the norm's reduction.
int lanes_per_head(const RopeSpec& spec, int width, bool norm);

// The thread mapping both the generator and the launcher derive from spec + config.
struct Mapping {
  int pairs;        // P = rotary_dim / 2
  int width;        // W elements per access
  int chunks;       // C = P / W chunks per head, one per lane
  int lanes;        // L lanes per head: C, or (norm) C rounded up to a power of two
  int groups;       // G = threads / L head groups
  int pass_width;   // elements per access of the part past rotary_dim (copied out of place, or normalised)
  int pass_chunks;  // (head_dim - rotary_dim) / pass_width
};
Mapping mapping(const RopeSpec& spec, const LaunchConfig& config, bool norm = false);

// For the in-memory caches' hash maps (not persisted: disk keys are the canonical key text).
size_t hash_value(const RopeSpec& spec);
size_t hash_value(const LaunchConfig& config);
size_t hash_combine(size_t seed, size_t value);

// A spec and config together: the in-memory cache key of a rotating op.
struct SpecConfig {
  RopeSpec spec;
  LaunchConfig config;
  bool operator==(const SpecConfig&) const = default;
};
struct SpecConfigHash {
  size_t operator()(const SpecConfig& k) const { return hash_combine(hash_value(k.spec), hash_value(k.config)); }
};

}  // namespace ropejit::rope
