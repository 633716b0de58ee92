// The CUDA Driver API, loaded at run time with dlopen("libcuda.so.1"), so that every binary starts
// and explains itself on a machine with no driver. libcuda is never linked.
#pragma once

#include <cuda.h>

#include <string>

// Every driver entry point ropejit calls. cuda.h maps some names to versioned symbols (cuMemAlloc ->
// cuMemAlloc_v2); the table uses the same macros, so member and symbol names always agree.
// Required: without these nothing runs, and the driver counts as absent.
#define ROPEJIT_CU_REQUIRED(X) \
  X(cuInit)                     \
  X(cuDriverGetVersion)         \
  X(cuGetErrorName)             \
  X(cuGetErrorString)           \
  X(cuDeviceGet)                \
  X(cuDeviceGetCount)           \
  X(cuDeviceGetName)            \
  X(cuDeviceGetAttribute)       \
  X(cuDevicePrimaryCtxRetain)   \
  X(cuDevicePrimaryCtxRelease)  \
  X(cuCtxGetCurrent)            \
  X(cuCtxSetCurrent)            \
  X(cuCtxGetDevice)             \
  X(cuCtxSynchronize)           \
  X(cuModuleLoadDataEx)         \
  X(cuModuleUnload)             \
  X(cuModuleGetFunction)        \
  X(cuLaunchKernel)             \
  X(cuMemAlloc)                 \
  X(cuMemFree)                  \
  X(cuMemcpyHtoD)               \
  X(cuMemcpyDtoH)               \
  X(cuMemcpyDtoD)               \
  X(cuMemcpyDtoDAsync)          \
  X(cuMemsetD8)
// Optional: each serves one feature, and only that feature fails (naming the symbol) without it.
#define ROPEJIT_CU_OPTIONAL(X)   \
  X(cuLinkCreate)                \
  X(cuLinkAddData)               \
  X(cuLinkComplete)              \
  X(cuLinkDestroy)               \
  X(cuLibraryLoadData)           \
  X(cuLibraryUnload)             \
  X(cuLibraryGetKernel)          \
  X(cuKernelGetFunction)         \
  X(cuCtxCreate)                 \
  X(cuCtxDestroy)                \
  X(cuCtxPushCurrent)            \
  X(cuCtxPopCurrent)             \
  X(cuStreamCreate)              \
  X(cuStreamDestroy)             \
  X(cuStreamSynchronize)         \
  X(cuStreamIsCapturing)         \
  X(cuStreamBeginCapture)        \
  X(cuStreamEndCapture)          \
  X(cuGraphInstantiateWithFlags) \
  X(cuGraphLaunch)               \
  X(cuGraphDestroy)              \
  X(cuGraphExecDestroy)          \
  X(cuEventCreate)               \
  X(cuEventDestroy)              \
  X(cuEventRecord)               \
  X(cuEventSynchronize)          \
  X(cuEventQuery)                \
  X(cuEventElapsedTime)
#define ROPEJIT_CU_FUNCTIONS(X) ROPEJIT_CU_REQUIRED(X) ROPEJIT_CU_OPTIONAL(X)

namespace ropejit::runtime {

struct DriverApi {
#define ROPEJIT_CU_MEMBER(name) decltype(&::name) name = nullptr;
  ROPEJIT_CU_FUNCTIONS(ROPEJIT_CU_MEMBER)
#undef ROPEJIT_CU_MEMBER
  int version = 0;  // cuDriverGetVersion, e.g. 13000
};

// The loaded and initialised driver; throws ropejit::Error saying why there is none.
const DriverApi& driver();
// The same without throwing: nullptr, and the reason in *why.
const DriverApi* try_driver(std::string* why);

// "CUDA_ERROR_X (text)" for a result code.
std::string result_text(CUresult r);
// Throws ropejit::Error naming `what` and the result, unless r is CUDA_SUCCESS.
void check(CUresult r, const char* what);

// An optional entry point, or an Error saying the driver lacks it and which feature needs it.
[[noreturn]] void missing_symbol(const char* symbol, const char* feature);
template <typename F>
F need(F f, const char* symbol, const char* feature) {
  if (!f) missing_symbol(symbol, feature);
  return f;
}
#define ROPEJIT_NEED(api, name, feature) ::ropejit::runtime::need((api).name, #name, feature)

}  // namespace ropejit::runtime
