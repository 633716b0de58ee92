// The RoPE kernel's parameters, in the order the generator declares them and launches pass them.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace ropejit::rope {

struct Strides {
  int64_t batch = 0, seq = 0, head = 0;
};

struct KernelArgs {
  void* q_in = nullptr;
  void* q_out = nullptr;
  void* k_in = nullptr;
  void* k_out = nullptr;
  const void* cos = nullptr;
  const void* sin = nullptr;
  const void* position_ids = nullptr;
  int64_t position_offset = 0;
  int64_t seq_len = 1;
  int64_t max_position = 0;
  Strides q_in_strides, q_out_strides, k_in_strides, k_out_strides;

  static constexpr size_t kCount = 22;
  // Addresses of each parameter, as cuLaunchKernel and the host grid entry take them.
  std::array<void*, kCount> pointers() {
    return {&q_in, &q_out, &k_in, &k_out, &cos, &sin, &position_ids, &position_offset, &seq_len, &max_position,
            &q_in_strides.batch, &q_in_strides.seq, &q_in_strides.head,
            &q_out_strides.batch, &q_out_strides.seq, &q_out_strides.head,
            &k_in_strides.batch, &k_in_strides.seq, &k_in_strides.head,
            &k_out_strides.batch, &k_out_strides.seq, &k_out_strides.head};
  }
};

}  // namespace ropejit::rope
