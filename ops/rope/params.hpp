// The parameters every rotating kernel (RoPE, QK-norm + RoPE) starts with: q, k, the table and the
// positions. Written once: they drive the code, the host entry and the launch.
#pragma once

#include <vector>

#include "ops/rope/plan.hpp"
#include "ropejit/language.hpp"

namespace ropejit::rope {

std::vector<Arg> rotation_params(const RopeSpec& spec);
// The values of those parameters for a planned call, in their order (ArgPack::add checks each name).
void pack_rotation_args(ArgPack& args, const Plan& plan);

}  // namespace ropejit::rope
