#include "capi/dlpack_views.hpp"

#include <fmt/format.h>

namespace ropejit::capi {

Place place_of(const char* name, DLDevice device) {
  if (device.device_type == kDLCPU) return Place{Backend::host, 0};
  if (device.device_type == kDLCUDA) {
    if (device.device_id < 0) throw Error(fmt::format("{}: CUDA device_id {} is negative", name, device.device_id));
    return Place{Backend::cuda, device.device_id};
  }
  throw Error(ErrorKind::unsupported,
              fmt::format("{}: DLPack device type {} is not supported: ropejit runs on kDLCPU (1) and kDLCUDA (2) tensors",
                          name, int(device.device_type)));
}

std::string place_name(const Place& p) {
  return p.backend == Backend::host ? std::string("cpu") : fmt::format("cuda:{}", p.device);
}

void check_place(const char* name, const DLTensor& t, const Place& p, const char* ref_name) {
  Place mine = place_of(name, t.device);
  if (!(mine == p))
    throw Error(fmt::format("{}: on {}, but {} is on {}", name, place_name(mine), ref_name, place_name(p)));
}

DType dtype_of(const char* name, DLDataType t, bool ints) {
  if (t.lanes == 1) {
    if (!ints && t.code == kDLFloat && t.bits == 32) return DType::f32;
    if (!ints && t.code == kDLFloat && t.bits == 16) return DType::f16;
    if (!ints && t.code == kDLBfloat && t.bits == 16) return DType::bf16;
    if (ints && t.code == kDLInt && t.bits == 32) return DType::i32;
    if (ints && t.code == kDLInt && t.bits == 64) return DType::i64;
  }
  throw Error(fmt::format("{}: DLPack dtype (code {}, bits {}, lanes {}) is not supported: use {}", name, int(t.code),
                          int(t.bits), int(t.lanes),
                          ints ? "int32 or int64" : "float32, float16 or bfloat16"));
}

void* address_of(const DLTensor& t) { return static_cast<char*>(t.data) + t.byte_offset; }

namespace {
void check_dims(const char* name, const DLTensor& t) {
  if (t.ndim < 0 || t.ndim > 8) throw Error(fmt::format("{}: ndim {} is out of range", name, t.ndim));
  if (t.ndim > 0 && !t.shape) throw Error(fmt::format("{}: null shape", name));
  if (!t.data) throw Error(fmt::format("{}: null data pointer", name));
}
// Stride of dimension i, in elements (compact row-major where strides is NULL).
int64_t stride_at(const DLTensor& t, int i) {
  if (t.strides) return t.strides[i];
  int64_t s = 1;
  for (int j = t.ndim - 1; j > i; --j) s *= t.shape[j];
  return s;
}
}  // namespace

TensorView view_of(const char* name, const DLTensor& t) {
  check_dims(name, t);
  if (t.ndim != 3 && t.ndim != 4)
    throw Error(fmt::format("{}: {} dimensions; expected [tokens, heads, head_dim] or [batch, seq, heads, head_dim]",
                            name, t.ndim));
  const int n = t.ndim;
  if (t.shape[n - 1] > 1 && stride_at(t, n - 1) != 1)
    throw Error(fmt::format("{}: the innermost (head_dim) stride is {}; it must be 1", name, stride_at(t, n - 1)));
  TensorView v;
  v.data = address_of(t);
  v.dtype = dtype_of(name, t.dtype);
  v.head_dim = t.shape[n - 1];
  v.heads = t.shape[n - 2];
  v.stride_head = stride_at(t, n - 2);
  v.seq = t.shape[n - 3];
  v.stride_seq = stride_at(t, n - 3);
  if (n == 4) {
    v.batch = t.shape[0];
    v.stride_batch = stride_at(t, 0);
  } else {
    v.batch = 1;
    v.stride_batch = 0;
  }
  return v;
}

void check_contiguous(const char* name, const DLTensor& t, int64_t count) {
  check_dims(name, t);
  int64_t n = 1, expected = 1;
  for (int i = t.ndim - 1; i >= 0; --i) {
    if (t.shape[i] < 0) throw Error(fmt::format("{}: negative size {} in dimension {}", name, t.shape[i], i));
    if (t.strides && t.shape[i] > 1 && t.strides[i] != expected)
      throw Error(fmt::format("{}: not contiguous (dimension {} has stride {}, expected {})", name, i, t.strides[i],
                              expected));
    expected *= t.shape[i];
    n *= t.shape[i];
  }
  if (n != count) throw Error(fmt::format("{}: {} elements, expected {}", name, n, count));
}

Positions positions_of(const DLTensor& ids, const TensorView& q, int q_ndim, bool multimodal) {
  DType dtype = dtype_of("positions", ids.dtype, /*ints=*/true);
  if (multimodal) {  // [3, tokens] or [3, batch, seq]: the t, h and w ids, each contiguous after the other
    const bool ok = ids.shape && ids.shape[0] == 3 &&
                    ((ids.ndim == 2 && ids.shape[1] == q.tokens()) ||
                     (ids.ndim == 3 && q_ndim == 4 && ids.shape[1] == q.batch && ids.shape[2] == q.seq));
    if (!ok)
      throw Error(fmt::format("positions: with mrope_section, expected [3, tokens]{} (the t, h and w ids)",
                              q_ndim == 4 ? fmt::format(" or [3, batch, seq] = [3, {}, {}]", q.batch, q.seq) : ""));
    check_contiguous("positions", ids, 3 * q.tokens());
    return Positions::multimodal(address_of(ids), dtype);
  }
  bool shape_ok = ids.ndim == 1 || (ids.ndim == 2 && q_ndim == 4 && ids.shape && ids.shape[0] == q.batch &&
                                    ids.shape[1] == q.seq);
  if (!shape_ok)
    throw Error(fmt::format("positions: {} dimensions; expected [tokens]{}", ids.ndim,
                            q_ndim == 4 ? fmt::format(" or [batch, seq] = [{}, {}]", q.batch, q.seq) : ""));
  check_contiguous("positions", ids, q.tokens());
  return Positions::from_ids(address_of(ids), dtype);
}

}  // namespace ropejit::capi
