// The C API's table handle: a RopeTable ropejit built and owns, or a view of the caller's cos/sin.
#pragma once

#include <memory>

#include "capi/dlpack_views.hpp"
#include "ropejit/rope.hpp"

struct ropejit_table {
  ropejit::capi::Place place;
  std::unique_ptr<ropejit::RopeTable> owned;  // null for a borrowed table
  std::unique_ptr<ropejit::FrequencyTable> frequencies;  // set: angles computed in the kernel
  ropejit::AngleSource view{ropejit::CosSinTable{}};
};

namespace ropejit::capi {
// The table (or frequencies) of a call on `place` (q's): throws unless it is there.
const AngleSource& table_for(const ropejit_table* table, const Place& place);
}  // namespace ropejit::capi
