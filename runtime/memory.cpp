#include <fmt/format.h>

#include "ropejit/device.hpp"
#include "runtime/context.hpp"
#include "runtime/driver_api.hpp"

namespace ropejit {

using runtime::check;
using runtime::driver;

DeviceBuffer::DeviceBuffer(size_t bytes, int device) : bytes_(bytes) {
  runtime::ensure_context(device);
  CUdeviceptr p = 0;
  CUresult r = driver().cuMemAlloc(&p, bytes ? bytes : 1);
  if (r != CUDA_SUCCESS) throw Error(ErrorKind::driver, fmt::format("cuMemAlloc of {} bytes failed: {}", bytes, runtime::result_text(r)));
  ptr_ = p;
}

DeviceBuffer::~DeviceBuffer() {
  if (ptr_) driver().cuMemFree(ptr_);
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_) {
  o.ptr_ = 0;
  o.bytes_ = 0;
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    if (ptr_) driver().cuMemFree(ptr_);
    ptr_ = o.ptr_;
    bytes_ = o.bytes_;
    o.ptr_ = 0;
    o.bytes_ = 0;
  }
  return *this;
}

void DeviceBuffer::upload(const void* src, size_t bytes, size_t offset) {
  if (offset + bytes > bytes_) throw Error(fmt::format("upload of {} bytes at {} overflows a {}-byte buffer", bytes, offset, bytes_));
  check(driver().cuMemcpyHtoD(ptr_ + offset, src, bytes), "cuMemcpyHtoD");
}

void DeviceBuffer::download(void* dst, size_t bytes, size_t offset) const {
  if (offset + bytes > bytes_) throw Error(fmt::format("download of {} bytes at {} overflows a {}-byte buffer", bytes, offset, bytes_));
  check(driver().cuMemcpyDtoH(dst, ptr_ + offset, bytes), "cuMemcpyDtoH");
}

void DeviceBuffer::fill(uint8_t byte) { check(driver().cuMemsetD8(ptr_, byte, bytes_), "cuMemsetD8"); }

void DeviceBuffer::copy_from(const DeviceBuffer& src, size_t bytes, void* stream) {
  if (bytes > bytes_ || bytes > src.bytes_) throw Error("copy_from: more bytes than a buffer holds");
  check(driver().cuMemcpyDtoDAsync(ptr_, src.ptr_, bytes, static_cast<CUstream>(stream)), "cuMemcpyDtoDAsync");
}

void synchronize() { check(driver().cuCtxSynchronize(), "cuCtxSynchronize"); }

}  // namespace ropejit
