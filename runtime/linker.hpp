// PTX -> cubin through the driver's linker (cuLinkCreate / cuLinkAddData / cuLinkComplete), for the
// current context's device. The cubin loads without the driver's PTX JIT, so caching it makes later
// processes start faster.
#pragma once

#include <string>

namespace ropejit::runtime {
std::string link_cubin(const std::string& ptx, const std::string& what);
}
