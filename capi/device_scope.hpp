// Makes a tensor's GPU current for the length of one call: the C API honours DLPack's device_id even
// where the caller's current context belongs to another device (a framework's tensor on cuda:1 while
// cuda:0 is current). On the host, and where the right device is already current, it does nothing.
#pragma once

#include "capi/dlpack_views.hpp"

namespace ropejit::capi {

class DeviceScope {
 public:
  explicit DeviceScope(const Place& place);
  ~DeviceScope();
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  bool pushed_ = false;
};

}  // namespace ropejit::capi
