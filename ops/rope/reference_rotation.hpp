// The fp64 rotation every rotating op's reference shares: each head row read in fp64, optionally
// transformed first (the norm), then rotated; with the error scale of each element.
#pragma once

#include <functional>
#include <vector>

#include "ropejit/testing.hpp"

namespace ropejit::rope {

// `prepare` (may be empty) changes a head's row before the rotation; the elements outside the rotary
// part are then expected with scale |value| instead of bit-exact. `layout`: style, rotary_dim and
// offset, inverse, multimodal sections, and q_out's dtype (a narrower one rounds the part passed through).
ReferenceResult reference_rotation(const TensorView& x, const Positions& positions, const ReferenceTable& table,
                                   const RopeOptions& layout,
                                   const std::function<void(std::vector<double>& row)>& prepare);

}  // namespace ropejit::rope
