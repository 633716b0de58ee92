// ropejit_options read across ABI versions, and turned into the C++ options of a call.
#pragma once

#include "capi/dlpack_views.hpp"
#include "ropejit/qk_norm_rope.hpp"
#include "ropejit_c.h"

namespace ropejit::capi {

// The caller's options over the defaults: only the first struct_size bytes are read (NULL: defaults).
ropejit_options read_options(const ropejit_options* options);
RopeOptions rope_options(const ropejit_options& o, const Place& place);

}  // namespace ropejit::capi
