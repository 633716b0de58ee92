// The argument checks of both ops on the host backend: apply_rope / describe_kernel and
// apply_qk_norm_rope / describe_qk_norm_rope, with views, positions, table, norm and options read
// from the input (layout below). Every pointer points into buffers owned here (or is null), so any
// read the library makes of them is in bounds; describe_* never runs a kernel, and apply_* in this
// build (no LLVM: see fuzz/CMakeLists.txt) stops where it would generate code, after every check.
//
// Input, little-endian, zeros past its end:
//   u8 op (bit 0: qk_norm_rope; bit 1: also apply), u8 flags (bit 0: k, 1: q_out, 2: k_out, 3: ids,
//   4: k weight, 5: one_plus_weight),
//   4 views (q, k, q_out, k_out), each: u8 dtype, i64 batch, seq, heads, head_dim, stride_batch,
//     stride_seq, stride_head, u32 byte offset into the data buffer (0xffffffff: null),
//   positions: i64 offset, u8 ids dtype, u8 ids byte offset, u16 n, then n i64 ids,
//   table: u8 dtype, i64 max_position, rotary_dim, u32 cos offset, u32 sin offset,
//   options: u8 style, i64 rotary_dim, i32 threads, vector_width, unroll, streaming, device,
//   norm: u32 q weight offset, u32 k weight offset, u8 weight dtype, f64 eps.
#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz_common.hpp"
#include "ropejit/ropejit.hpp"

using namespace ropejit;

namespace {

constexpr size_t kData = size_t(1) << 16;  // bytes every q/k/out/table/weight pointer points into
constexpr size_t kIds = 4096;              // ids (int64 each)
alignas(64) unsigned char g_data[kData + 64];
alignas(64) int64_t g_ids[kIds + 1];

const void* pointer(uint32_t offset) { return offset == 0xffffffffu ? nullptr : g_data + offset % kData; }

TensorView view(fuzz::Reader& in) {
  TensorView v;
  v.dtype = DType(in.get<uint8_t>());
  v.batch = in.get<int64_t>();
  v.seq = in.get<int64_t>();
  v.heads = in.get<int64_t>();
  v.head_dim = in.get<int64_t>();
  v.stride_batch = in.get<int64_t>();
  v.stride_seq = in.get<int64_t>();
  v.stride_head = in.get<int64_t>();
  v.data = const_cast<void*>(pointer(in.get<uint32_t>()));
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Reader in(data, size);
  const uint8_t op = in.get<uint8_t>(), flags = in.get<uint8_t>();
  TensorView q = view(in), k = view(in), q_out = view(in), k_out = view(in);

  Positions positions = Positions::contiguous(in.get<int64_t>());
  const DType ids_dtype = DType(in.get<uint8_t>());
  const uint8_t ids_shift = in.get<uint8_t>() % 8;
  std::memset(g_ids, 0, sizeof g_ids);
  const size_t n_ids = in.get<uint16_t>();
  for (size_t i = 0; i < n_ids && i < kIds; ++i) g_ids[i] = in.get<int64_t>();
  // The library reads q.batch x q.seq ids on the host: given only where they fit in g_ids.
  int64_t tokens = 0;
  const bool ids_fit = q.batch >= 0 && q.seq >= 0 && !__builtin_mul_overflow(q.batch, q.seq, &tokens) &&
                       tokens <= int64_t(kIds);
  if ((flags & 8) && ids_fit)
    positions = Positions::from_ids(reinterpret_cast<const unsigned char*>(g_ids) + ids_shift, ids_dtype);

  CosSinTable table;
  table.dtype = DType(in.get<uint8_t>());
  table.max_position = in.get<int64_t>();
  table.rotary_dim = in.get<int64_t>();
  table.cos = pointer(in.get<uint32_t>());
  table.sin = pointer(in.get<uint32_t>());

  RopeOptions options;
  options.backend = Backend::host;
  options.style = RopeStyle(in.get<uint8_t>());
  options.rotary_dim = in.get<int64_t>();
  options.threads = in.get<int32_t>();
  options.vector_width = in.get<int32_t>();
  options.unroll = in.get<int32_t>();
  options.streaming = in.get<int32_t>();
  options.device = in.get<int32_t>();
  if (flags & 2) options.q_out = q_out;
  if (flags & 4) options.k_out = k_out;

  QkNorm norm;
  norm.q_weight = pointer(in.get<uint32_t>());
  norm.k_weight = pointer(in.get<uint32_t>());
  if (!(flags & 16)) norm.k_weight = nullptr;
  norm.weight_dtype = DType(in.get<uint8_t>());
  norm.eps = in.get<double>();
  norm.one_plus_weight = flags & 32;

  const TensorView* kp = (flags & 1) ? &k : nullptr;
  try {
    KernelChoice c = (op & 1) ? describe_qk_norm_rope(q, kp, positions, table, norm, options)
                              : describe_kernel(q, kp, positions, table, options);
    if (c.spec_key.empty() || c.config.threads <= 0 || c.config.vector_width <= 0) std::abort();
  } catch (const Error& e) {
    fuzz::check_error(e);
    return 0;
  }
  if (op & 2) {
    try {
      if (op & 1) apply_qk_norm_rope(q, kp, positions, table, norm, options);
      else apply_rope(q, kp, positions, table, options);
    } catch (const Error& e) {
      fuzz::check_error(e);
    }
  }
  return 0;
}
