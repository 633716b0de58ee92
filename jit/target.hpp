// The one place that chooses a PTX target: the device's sm, and the highest PTX ISA that both this
// LLVM and the driver accept, no lower than the sm needs. Launch and precompile both use it.
#pragma once

#include "codegen/targets.hpp"

namespace ropejit::jit {

// For an sm and a driver version (0: no driver, LLVM's highest ISA). Throws Error when the driver is
// too old for the sm.
codegen::PtxTarget ptx_target(int sm, int driver_version, const char* device_name = nullptr);
// The current context's device under the loaded driver.
codegen::PtxTarget current_ptx_target();

}  // namespace ropejit::jit
