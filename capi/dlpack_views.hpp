// DLPack tensors as ropejit's views: where a tensor lives, its dtype, and its shape and strides as a
// TensorView, positions, a weight vector or a table column block. Each throws Error naming the
// argument and the problem.
#pragma once

#include <dlpack/dlpack.h>

#include "ropejit/rope.hpp"

namespace ropejit::capi {

// Where a call runs: kDLCPU -> the host backend, kDLCUDA -> the GPU `device_id`.
struct Place {
  Backend backend = Backend::host;
  int device = 0;
  bool operator==(const Place&) const = default;
};
Place place_of(const char* name, DLDevice device);
// "cpu" or "cuda:N", for messages.
std::string place_name(const Place& p);
// Throws unless `t` lives at `p` (the place of `ref_name`).
void check_place(const char* name, const DLTensor& t, const Place& p, const char* ref_name);

// f32, f16 or bf16 (kDLFloat 32/16, kDLBfloat 16); ints i32/i64 with `ints`.
DType dtype_of(const char* name, DLDataType t, bool ints = false);
// The first element's address (data + byte_offset).
void* address_of(const DLTensor& t);

// [tokens, heads, head_dim] (batch 1) or [batch, seq, heads, head_dim], innermost stride 1.
TensorView view_of(const char* name, const DLTensor& t);
// A 1-D [n] or n-D tensor whose elements are contiguous in row-major order, with `count` elements.
void check_contiguous(const char* name, const DLTensor& t, int64_t count);

// Position ids for q's tokens: int32/int64, [tokens] or [batch, seq], contiguous.
Positions positions_of(const DLTensor& ids, const TensorView& q, int q_ndim, bool multimodal = false);

}  // namespace ropejit::capi
