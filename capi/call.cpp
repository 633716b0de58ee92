#include "capi/call.hpp"

#include <fmt/format.h>

#include "capi/table.hpp"

namespace ropejit::capi {

namespace {
TensorView other_view(const char* name, const DLTensor& t, const Call& call, const char* q_name, int q_ndim) {
  check_place(name, t, call.place, q_name);
  if (t.ndim != q_ndim) throw Error(fmt::format("{}: {} dimensions, but {} has {}", name, t.ndim, q_name, q_ndim));
  return view_of(name, t);
}
}  // namespace

Call read_call(const DLTensor* q, const DLTensor* k, const DLTensor* q_out, const DLTensor* k_out,
               const DLTensor* positions, const ropejit_table* table, const ropejit_options* options,
               const TensorNames& names) {
  if (!q) throw Error(fmt::format("{}: null", names.q));
  Call call;
  call.place = place_of(names.q, q->device);
  call.q = view_of(names.q, *q);
  call.c_options = read_options(options);
  call.options = rope_options(call.c_options, call.place);
  if (k) {
    call.k = other_view(names.k, *k, call, names.q, q->ndim);
    call.has_k = true;
  }
  if (q_out) call.options.q_out = other_view(names.q_out, *q_out, call, names.q, q->ndim);
  if (k_out) call.options.k_out = other_view(names.k_out, *k_out, call, names.q, q->ndim);
  if (positions) {
    check_place("positions", *positions, call.place, names.q);
    const auto& m = call.options.mrope_section;
    call.positions = positions_of(*positions, call.q, q->ndim, m[0] || m[1] || m[2]);
  } else {
    call.positions = Positions::contiguous(call.c_options.position_offset);
  }
  call.table = table_for(table, call.place);
  return call;
}

const void* weight_of(const char* name, const DLTensor* w, const Call& call, DType* dtype) {
  if (!w) return nullptr;  // the op names a missing weight it needs
  check_place(name, *w, call.place, "q");
  if (w->ndim != 1) throw Error(fmt::format("{}: {} dimensions; expected [head_dim]", name, w->ndim));
  check_contiguous(name, *w, call.q.head_dim);
  *dtype = dtype_of(name, w->dtype);
  return address_of(*w);
}

}  // namespace ropejit::capi
