// ropejit_qk_norm_rope, ropejit_qk_norm_rope_warm_up and ropejit_qk_norm_rope_prepare.
#include <fmt/format.h>

#include "capi/call.hpp"
#include "capi/device_scope.hpp"
#include "capi/error_boundary.hpp"
#include "capi/prepared.hpp"

namespace ropejit::capi {
namespace {

// The call and its norm: weights on q's place, one dtype for both.
struct NormCall {
  Call call;
  QkNorm norm;
};

NormCall read_norm_call(const DLTensor* q, const DLTensor* k, const DLTensor* q_out, const DLTensor* k_out,
                        const DLTensor* q_weight, const DLTensor* k_weight, const DLTensor* positions,
                        const ropejit_table* table, const ropejit_options* options) {
  NormCall c{read_call(q, k, q_out, k_out, positions, table, options), QkNorm{}};
  DType q_dtype = c.call.q.dtype, k_dtype = q_dtype;
  c.norm.q_weight = weight_of("q_weight", q_weight, c.call, &q_dtype);
  c.norm.k_weight = weight_of("k_weight", k_weight, c.call, &k_dtype);
  if (q_weight && k_weight && q_dtype != k_dtype)
    throw Error(fmt::format("k_weight: dtype {} differs from q_weight's {}", dtype_name(k_dtype), dtype_name(q_dtype)));
  c.norm.weight_dtype = q_weight ? q_dtype : k_dtype;
  c.norm.eps = c.call.c_options.eps;
  c.norm.one_plus_weight = c.call.c_options.one_plus_weight != 0;
  return c;
}

}  // namespace
}  // namespace ropejit::capi

using namespace ropejit;
using namespace ropejit::capi;

extern "C" {

ropejit_status ropejit_qk_norm_rope(const DLTensor* q, const DLTensor* k, const DLTensor* q_out, const DLTensor* k_out,
                                    const DLTensor* q_weight, const DLTensor* k_weight, const DLTensor* positions,
                                    const ropejit_table* table, const ropejit_options* options, void* stream) {
  return guarded("ropejit_qk_norm_rope", [&] {
    NormCall c = read_norm_call(q, k, q_out, k_out, q_weight, k_weight, positions, table, options);
    DeviceScope scope(c.call.place);
    apply_qk_norm_rope(c.call.q, c.call.k_ptr(), c.call.positions, c.call.table, c.norm, c.call.options, stream);
  });
}

ropejit_status ropejit_qk_norm_rope_warm_up(const DLTensor* q, const DLTensor* k, const DLTensor* q_out,
                                            const DLTensor* k_out, const DLTensor* q_weight, const DLTensor* k_weight,
                                            const DLTensor* positions, const ropejit_table* table,
                                            const ropejit_options* options) {
  return guarded("ropejit_qk_norm_rope_warm_up", [&] {
    NormCall c = read_norm_call(q, k, q_out, k_out, q_weight, k_weight, positions, table, options);
    DeviceScope scope(c.call.place);
    warm_up(c.call.q, c.call.k_ptr(), c.call.positions, c.call.table, c.norm, c.call.options);
  });
}

ropejit_status ropejit_qk_norm_rope_prepare(const DLTensor* q, const DLTensor* k, const DLTensor* q_out,
                                            const DLTensor* k_out, const DLTensor* q_weight, const DLTensor* k_weight,
                                            const DLTensor* positions, const ropejit_table* table,
                                            const ropejit_options* options, ropejit_prepared** out) {
  return guarded("ropejit_qk_norm_rope_prepare", [&] {
    if (!out) throw Error("out: null");
    NormCall c = read_norm_call(q, k, q_out, k_out, q_weight, k_weight, positions, table, options);
    DeviceScope scope(c.call.place);
    publish(out, prepare_qk_norm_rope(c.call.q, c.call.k_ptr(), c.call.positions, c.call.table, c.norm, c.call.options),
            c.call.place, c.call.positions);
  });
}

}  // extern "C"
