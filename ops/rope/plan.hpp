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

// The checks that depend on the data, not the layout; make_plan runs them, and so does each launch of
// a prepared call. Overlap by elements among the plan's views (in place: q and k; out of place: every
// output against every other view).
void check_overlaps(const Plan& plan, bool with_k, bool out_of_place);
// Pointers, dtypes and (on the host backend, or for an offset) the range of the positions.
void check_positions(const Positions& positions, const TensorView& q, int64_t max_position, const char* whose,
                     Backend backend);
// On the host backend, each sequence's frequency set index (with several sets).
void check_set_indices(const AngleSource& angles, const Positions& positions, const TensorView& q, Backend backend);
// How the kernel reads these positions.
PositionKind position_kind(const Positions& positions);
// "the table's" or "the frequencies'", for messages.
const char* angles_owner(const Plan& plan);

}  // namespace ropejit::rope
