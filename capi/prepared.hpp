// A C handle over a PreparedCall: the call, where it runs, and the positions' form it was made with
// (each launch fills in its ids' address or its offset).
#pragma once

#include "capi/dlpack_views.hpp"
#include "ropejit/rope.hpp"
#include "ropejit_c.h"

struct ropejit_prepared {
  ropejit::PreparedCall call;
  ropejit::capi::Place place;
  ropejit::Positions positions;
};

namespace ropejit::capi {

// Publishes a prepared call to *out (checked non-null before the work that makes it).
void publish(ropejit_prepared** out, PreparedCall call, const Place& place, const Positions& positions);

}  // namespace ropejit::capi
