// ropejit_prepared_launch and ropejit_prepared_destroy (each op's file prepares).
#include "capi/prepared.hpp"

#include <memory>

#include "capi/device_scope.hpp"
#include "capi/error_boundary.hpp"

namespace ropejit::capi {

void publish(ropejit_prepared** out, PreparedCall call, const Place& place, const Positions& positions) {
  auto p = std::make_unique<ropejit_prepared>();
  p->call = std::move(call);
  p->place = place;
  p->positions = positions;
  *out = p.release();
}

}  // namespace ropejit::capi

using namespace ropejit;
using namespace ropejit::capi;

extern "C" {

ropejit_status ropejit_prepared_launch(const ropejit_prepared* prepared, const ropejit_data* data, void* stream) {
  return guarded("ropejit_prepared_launch", [&] {
    if (!prepared) throw Error("prepared: null");
    if (!data) throw Error("data: null");
    Positions positions = prepared->positions;
    if (positions.ids) {
      if (!data->positions) throw Error("data: positions is NULL, but the call was prepared with position ids");
      positions.ids = data->positions;
    } else {
      if (data->positions) throw Error("data: positions given, but the call was prepared without position ids");
      positions.offset = data->position_offset;
    }
    DeviceScope scope(prepared->place);
    prepared->call.launch(RopeData{data->q, data->k, data->q_out, data->k_out, positions}, stream);
  });
}

void ropejit_prepared_destroy(ropejit_prepared* prepared) { delete prepared; }

}  // extern "C"
