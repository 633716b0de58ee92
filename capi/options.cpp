// Options, versions.
#include "capi/options.hpp"

#include <fmt/format.h>

#include <cstring>

#include "capi/error_boundary.hpp"

namespace ropejit::capi {

ropejit_options read_options(const ropejit_options* options) {
  ropejit_options o;
  ropejit_options_init(&o);
  if (!options) return o;
  const uint32_t size = options->struct_size;
  if (size < sizeof(uint32_t) || size > sizeof(ropejit_options))
    throw Error(fmt::format("options: struct_size {} is not that of a ropejit_options (this library's is {}; "
                            "set it with ropejit_options_init)",
                            size, sizeof(ropejit_options)));
  std::memcpy(&o, options, size);
  o.struct_size = sizeof(ropejit_options);
  return o;
}

RopeOptions rope_options(const ropejit_options& o, const Place& place) {
  if (o.style != ROPEJIT_STYLE_NEOX && o.style != ROPEJIT_STYLE_GPTJ)
    throw Error(fmt::format("options: style {} is neither ROPEJIT_STYLE_NEOX (0) nor ROPEJIT_STYLE_GPTJ (1)", o.style));
  RopeOptions r;
  r.style = o.style == ROPEJIT_STYLE_NEOX ? RopeStyle::neox : RopeStyle::gptj;
  r.rotary_dim = o.rotary_dim;
  r.backend = place.backend;
  r.device = place.device;
  r.threads = o.threads;
  r.vector_width = o.vector_width;
  r.unroll = o.unroll;
  r.streaming = o.streaming;
  r.rotary_offset = o.rotary_offset;
  for (int i = 0; i < 3; ++i) r.mrope_section[size_t(i)] = o.mrope_section[i];
  r.mrope_interleaved = o.mrope_interleaved != 0;
  return r;
}

}  // namespace ropejit::capi

extern "C" {

void ropejit_options_init(ropejit_options* options) {
  if (!options) return;
  std::memset(options, 0, sizeof *options);
  options->struct_size = sizeof *options;
  options->style = ROPEJIT_STYLE_NEOX;
  options->eps = 1e-6;
  options->streaming = -1;
}

int32_t ropejit_c_api_version(void) { return ROPEJIT_C_API_VERSION; }

const char* ropejit_version(void) { return ROPEJIT_VERSION_STRING; }

}  // extern "C"
