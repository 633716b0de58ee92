// apply_rope's arguments checked and turned into a spec, kernel arguments and the widest vector the
// pointers and strides allow. Every check happens here, before anything is written.
#pragma once

#include "ops/rope/kernel_args.hpp"
#include "ops/rope/spec.hpp"

namespace ropejit::rope {

struct Plan {
  RopeSpec spec;
  KernelArgs args;
  int64_t tokens = 0;
  int width_cap = 1;  // widest vector (elements) every q/k pointer and stride is aligned for
};

// Throws Error naming the argument and what is wrong.
Plan make_plan(const TensorView& q, const TensorView* k, const Positions& positions, const CosSinTable& table,
               const RopeOptions& options);

}  // namespace ropejit::rope
