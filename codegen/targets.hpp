// What the backends produce, without LLVM's headers: code above codegen/ includes only this.
#pragma once

#include <cstdint>

namespace ropejit::codegen {

struct PtxTarget {
  int sm = 90;       // compute capability, e.g. 80, 90
  int ptx_isa = 85;  // e.g. 85 for PTX ISA 8.5
};

// Highest PTX ISA the NVPTX backend of the LLVM ropejit is built with can emit (LLVM 19: 8.5).
// A constant, so the LLVM-free runtime picks the same target (and cache keys) as the generator.
constexpr int kLlvmMaxPtxIsa = 85;
int llvm_max_ptx_isa();

// void grid(void** params, i64 gx, i64 gy, i64 gz); params as for cuLaunchKernel.
using HostGridFn = void (*)(void** params, int64_t gx, int64_t gy, int64_t gz);

}  // namespace ropejit::codegen
