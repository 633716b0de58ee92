// Offline generation for any op: each definition as PTX for each sm, and as a cubin for the local
// device where its driver can link one.
#pragma once

#include <vector>

#include "jit/kernel_def.hpp"
#include "ropejit/aot.hpp"

namespace ropejit::jit {

std::vector<PrecompiledKernel> precompile_defs(const std::vector<KernelDef>& defs, const std::vector<int>& sms);

}  // namespace ropejit::jit
