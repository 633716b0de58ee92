// A rotating op's arguments checked and turned into a spec, the views the kernel reads and writes,
// and the widest vector the pointers and strides allow. Every check happens here, before anything is
// written. Shared by RoPE and QK-norm + RoPE.
#pragma once

#include "ops/rope/spec.hpp"
#include "ropejit/rope.hpp"

namespace ropejit::rope {

struct Plan {
  RopeSpec spec;
  TensorView q, q_out, k, k_out;  // k and k_out empty (null, zero strides) without k; in place: out = in
  AngleSource angles = CosSinTable{};  // a table, or frequencies (spec.angles says which)
  int64_t max_position = 0;
  Positions positions;
  int64_t tokens = 0;
  int width_cap = 1;  // widest vector (elements) every q/k pointer and stride is aligned for
};

// Throws Error naming the argument and what is wrong.
Plan make_plan(const TensorView& q, const TensorView* k, const Positions& positions, const AngleSource& angles,
               const RopeOptions& options);

}  // namespace ropejit::rope
