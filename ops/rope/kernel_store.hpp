// Where a GPU kernel's module comes from, below the in-memory cache: bundle -> disk cubin (this
// driver) -> disk PTX (driver JIT) -> code generation. What had to be made is published to the disk
// cache (PTX and the driver-linked cubin) for later processes.
#pragma once

#include <string>

#include "codegen/targets.hpp"
#include "ops/rope/spec.hpp"
#include "runtime/module.hpp"

namespace ropejit::rope {

// Bumped whenever the generator's output changes, so old cache entries are never used.
constexpr int kGeneratorVersion = 4;

// The disk and bundle key: everything that changes the PTX's bytes.
std::string ptx_key(const RopeSpec& spec, const LaunchConfig& config, const codegen::PtxTarget& target);

// Loads the kernel's module into the current context.
runtime::Module obtain_module(const RopeSpec& spec, const LaunchConfig& config, const codegen::PtxTarget& target,
                              int driver_version);

}  // namespace ropejit::rope
