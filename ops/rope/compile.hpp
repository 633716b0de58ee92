// Spec + config -> code: PTX text for a GPU target, or a host function (the CPU backend).
#pragma once

#include <string>

#include "codegen/targets.hpp"
#include "ops/rope/spec.hpp"

namespace ropejit::rope {

// Full code generation: IR -> O3 -> PTX. Counted in stats().
std::string generate_ptx(const RopeSpec& spec, const LaunchConfig& config, const codegen::PtxTarget& target);
// IR -> O3 -> host code through ORC. Counted in stats().
codegen::HostGridFn generate_host(const RopeSpec& spec, const LaunchConfig& config);

}  // namespace ropejit::rope
