// ropejit_table_create / wrap / destroy / shape.
#include "capi/table.hpp"

#include <fmt/format.h>

#include "capi/device_scope.hpp"
#include "capi/error_boundary.hpp"

namespace ropejit::capi {

const AngleSource& table_for(const ropejit_table* table, const Place& place) {
  if (!table) throw Error("table: null");
  if (!(table->place == place))
    throw Error(fmt::format("table: on {}, but q is on {}", place_name(table->place), place_name(place)));
  return table->view;
}

namespace {
// A table's rows: [max_position, rotary_dim / 2], contiguous.
void check_table_tensor(const char* name, const DLTensor& t) {
  if (t.ndim != 2 || !t.shape) throw Error(fmt::format("{}: {} dimensions; expected [max_position, rotary_dim / 2]", name, t.ndim));
  check_contiguous(name, t, t.shape[0] * t.shape[1]);
}
}  // namespace

}  // namespace ropejit::capi

using namespace ropejit;
using namespace ropejit::capi;

extern "C" {

ropejit_status ropejit_table_create(DLDevice device, int64_t max_position, int64_t rotary_dim, double theta,
                                    DLDataType dtype, ropejit_table** out) {
  return guarded("ropejit_table_create", [&] {
    if (!out) throw Error("out: null");
    *out = nullptr;
    Place place = place_of("device", device);
    DType dt = dtype_of("dtype", dtype);
    auto t = std::make_unique<ropejit_table>();
    t->place = place;
    DeviceScope scope(place);
    t->owned = std::make_unique<RopeTable>(place.backend, max_position, rotary_dim, theta, dt, place.device);
    t->view = t->owned->view();
    *out = t.release();
  });
}

ropejit_status ropejit_frequencies_create(DLDevice device, int64_t rotary_dim, double theta, int32_t angles,
                                          ropejit_table** out) {
  return guarded("ropejit_frequencies_create", [&] {
    if (!out) throw Error("out: null");
    *out = nullptr;
    if (angles != ROPEJIT_ANGLES_EXACT && angles != ROPEJIT_ANGLES_HF_COMPAT)
      throw Error(fmt::format("angles: {} is neither ROPEJIT_ANGLES_EXACT (1) nor ROPEJIT_ANGLES_HF_COMPAT (2)", angles));
    Place place = place_of("device", device);
    auto t = std::make_unique<ropejit_table>();
    t->place = place;
    DeviceScope scope(place);
    t->frequencies = std::make_unique<FrequencyTable>(FrequencyTable::from_theta(place.backend, rotary_dim, theta, place.device));
    t->view = AngleSource(t->frequencies->view(angles == ROPEJIT_ANGLES_EXACT ? AngleMode::exact : AngleMode::hf_compat));
    *out = t.release();
  });
}

ropejit_status ropejit_table_wrap(const DLTensor* cos, const DLTensor* sin, ropejit_table** out) {
  return guarded("ropejit_table_wrap", [&] {
    if (!out) throw Error("out: null");
    *out = nullptr;
    if (!cos) throw Error("cos: null");
    if (!sin) throw Error("sin: null");
    Place place = place_of("cos", cos->device);
    check_place("sin", *sin, place, "cos");
    check_table_tensor("cos", *cos);
    check_table_tensor("sin", *sin);
    DType dt = dtype_of("cos", cos->dtype);
    if (dt != DType::f32 && dt != DType::bf16)
      throw Error(fmt::format("cos: dtype {} is not supported: use float32 or bfloat16", dtype_name(dt)));
    if (dtype_of("sin", sin->dtype) != dt) throw Error("sin: dtype differs from cos's");
    if (sin->shape[0] != cos->shape[0] || sin->shape[1] != cos->shape[1])
      throw Error(fmt::format("sin: shape [{}, {}] differs from cos's [{}, {}]", sin->shape[0], sin->shape[1],
                              cos->shape[0], cos->shape[1]));
    if (cos->shape[0] <= 0 || cos->shape[1] <= 0) throw Error("cos: empty table");
    auto t = std::make_unique<ropejit_table>();
    t->place = place;
    t->view = CosSinTable{address_of(*cos), address_of(*sin), dt, cos->shape[0], 2 * cos->shape[1]};
    *out = t.release();
  });
}

void ropejit_table_destroy(ropejit_table* table) {
  if (!table) return;
  guarded("ropejit_table_destroy", [&] {
    std::unique_ptr<ropejit_table> owner(table);  // freed even where the scope fails
    DeviceScope scope(table->place);             // device memory is freed in its own device's context
    owner.reset();
  });
}

ropejit_status ropejit_table_shape(const ropejit_table* table, int64_t* max_position, int64_t* rotary_dim) {
  return guarded("ropejit_table_shape", [&] {
    if (!table) throw Error("table: null");
    const auto& v = table->view;
    if (max_position) *max_position = v.in_kernel ? v.frequencies.max_position : v.table.max_position;
    if (rotary_dim) *rotary_dim = v.in_kernel ? v.frequencies.rotary_dim : v.table.rotary_dim;
  });
}

}  // extern "C"
