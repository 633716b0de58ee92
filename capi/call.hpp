// What every op's entry point reads from its arguments: where it runs, q and k and their outputs as
// views, positions, the table and the options. Checked (throwing Error) before anything runs.
#pragma once

#include "capi/options.hpp"
#include "ropejit_c.h"

namespace ropejit::capi {

// The names of the four tensors in messages: q, k, q_out, k_out (or grad_q, ... for the backward).
struct TensorNames {
  const char *q = "q", *k = "k", *q_out = "q_out", *k_out = "k_out";
};

struct Call {
  Place place;
  TensorView q, k;
  bool has_k = false;
  Positions positions;
  AngleSource table{CosSinTable{}};
  ropejit_options c_options;
  RopeOptions options;
  const TensorView* k_ptr() const { return has_k ? &k : nullptr; }
};

Call read_call(const DLTensor* q, const DLTensor* k, const DLTensor* q_out, const DLTensor* k_out,
               const DLTensor* positions, const ropejit_table* table, const ropejit_options* options,
               const TensorNames& names = {});

// A weight vector [head_dim] on the call's place: its address and dtype.
const void* weight_of(const char* name, const DLTensor* w, const Call& call, DType* dtype);

}  // namespace ropejit::capi
