// ropejit_rope, ropejit_rope_backward, ropejit_rope_warm_up and ropejit_rope_prepare.
#include "capi/call.hpp"
#include "capi/device_scope.hpp"
#include "capi/error_boundary.hpp"
#include "capi/prepared.hpp"

namespace ropejit::capi {
namespace {

const TensorNames kGradNames{"grad_q", "grad_k", "grad_q_out", "grad_k_out"};

ropejit_status rope(const char* function, bool backward, const DLTensor* q, const DLTensor* k, const DLTensor* q_out,
                    const DLTensor* k_out, const DLTensor* positions, const ropejit_table* table,
                    const ropejit_options* options, void* stream) {
  return guarded(function, [&] {
    Call call = read_call(q, k, q_out, k_out, positions, table, options, backward ? kGradNames : TensorNames{});
    call.options.inverse = backward;  // the gradient of a rotation: the rotation by -angle
    DeviceScope scope(call.place);
    apply_rope(call.q, call.k_ptr(), call.positions, call.table, call.options, stream);
  });
}

}  // namespace
}  // namespace ropejit::capi

using namespace ropejit;
using namespace ropejit::capi;

extern "C" {

ropejit_status ropejit_rope(const DLTensor* q, const DLTensor* k, const DLTensor* q_out, const DLTensor* k_out,
                            const DLTensor* positions, const ropejit_table* table, const ropejit_options* options,
                            void* stream) {
  return rope("ropejit_rope", false, q, k, q_out, k_out, positions, table, options, stream);
}

ropejit_status ropejit_rope_backward(const DLTensor* grad_q, const DLTensor* grad_k, const DLTensor* grad_q_out,
                                     const DLTensor* grad_k_out, const DLTensor* positions, const ropejit_table* table,
                                     const ropejit_options* options, void* stream) {
  return rope("ropejit_rope_backward", true, grad_q, grad_k, grad_q_out, grad_k_out, positions, table, options, stream);
}

ropejit_status ropejit_rope_warm_up(const DLTensor* q, const DLTensor* k, const DLTensor* q_out, const DLTensor* k_out,
                                    const DLTensor* positions, const ropejit_table* table,
                                    const ropejit_options* options, int32_t backward) {
  return guarded("ropejit_rope_warm_up", [&] {
    Call call = read_call(q, k, q_out, k_out, positions, table, options);
    call.options.inverse = backward != 0;
    DeviceScope scope(call.place);
    warm_up(call.q, call.k_ptr(), call.positions, call.table, call.options);
  });
}

ropejit_status ropejit_rope_prepare(const DLTensor* q, const DLTensor* k, const DLTensor* q_out, const DLTensor* k_out,
                                    const DLTensor* positions, const ropejit_table* table,
                                    const ropejit_options* options, int32_t backward, ropejit_prepared** out) {
  return guarded("ropejit_rope_prepare", [&] {
    if (!out) throw Error("out: null");
    Call call = read_call(q, k, q_out, k_out, positions, table, options, backward ? kGradNames : TensorNames{});
    call.options.inverse = backward != 0;
    DeviceScope scope(call.place);
    publish(out, prepare_rope(call.q, call.k_ptr(), call.positions, call.table, call.options), call.place,
            call.positions);
  });
}

}  // extern "C"
