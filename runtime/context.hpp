// Devices and contexts: which context a call works in, and what the device is.
#pragma once

#include <cuda.h>

#include <string>

namespace ropejit::runtime {

struct DeviceProps {
  CUdevice device = 0;
  std::string name;
  int sm = 0;  // major * 10 + minor
  int multiprocessors = 0;
  int l2_bytes = 0;
};

// The highest PTX ISA (e.g. 90 for 9.0) a driver of this version (cuDriverGetVersion) accepts.
int driver_max_ptx_isa(int driver_version);

// Called once, on the first ensure_context (after static initialisation, from the caller's thread):
// the code generator's background warm-up registers itself here (the runtime alone has none).
extern void (*on_first_context)();

// Makes a context current and returns it: the caller's current context if there is one, else the
// primary context of device `ordinal` (retained once for the life of the process).
CUcontext ensure_context(int ordinal);

// Properties of the current context's device (cached per device).
const DeviceProps& current_device_props();
const DeviceProps& device_props(int ordinal);

}  // namespace ropejit::runtime
