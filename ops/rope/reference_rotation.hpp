// The fp64 rotation every rotating op's reference shares: each head row read in fp64, optionally
// transformed first (the norm), then rotated; with the error scale of each element.
#pragma once

#include <functional>
#include <vector>

#include "ropejit/testing.hpp"

namespace ropejit::rope {

// `prepare` (may be empty) changes a head's row before the rotation; the elements past rotary_dim
// are then expected with scale |value| instead of bit-exact. `inverse` rotates by -angle.
ReferenceResult reference_rotation(const TensorView& x, const Positions& positions, const ReferenceTable& table,
                                   RopeStyle style, int64_t rotary_dim,
                                   const std::function<void(std::vector<double>& row)>& prepare, bool inverse = false);

}  // namespace ropejit::rope
