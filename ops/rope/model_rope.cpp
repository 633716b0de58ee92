// A model's RoPE turned into what the kernels take: options for the layout, frequencies uploaded.
#include <fmt/format.h>

#include "ropejit/model.hpp"

namespace ropejit {

RopeOptions ModelRope::options() const {
  RopeOptions o;
  o.style = style;
  o.rotary_dim = rotary_dim;
  o.rotary_offset = rotary_offset;
  if (!mrope_section.empty()) {
    if (mrope_section.size() != 3) throw Error(fmt::format("mrope_section has {} sections, not 3", mrope_section.size()));
    for (size_t i = 0; i < 3; ++i) o.mrope_section[i] = int(mrope_section[i]);
    o.mrope_interleaved = mrope_interleaved;
  }
  return o;
}

FrequencyTable ModelRope::frequency_table(Backend backend, int64_t seq_len, int device) const {
  const RopeFrequencies f = frequencies(seq_len);
  return FrequencyTable(backend, f.inv_freq, f.attention_factor, device);
}

int32_t ModelRope::set_for(int64_t seq_len) const {
  if (seq_len < 0) throw Error(fmt::format("set_for: seq_len {} is negative", seq_len));
  return scaling == RopeScaling::longrope && seq_len > original_max_position_embeddings ? 1 : 0;
}

FrequencyTable ModelRope::frequency_sets(Backend backend, int device) const {
  if (scaling != RopeScaling::longrope) return frequency_table(backend, 0, device);
  const RopeFrequencies short_set = frequencies(0), long_set = frequencies(original_max_position_embeddings + 1);
  return FrequencyTable(backend, {short_set.inv_freq, long_set.inv_freq},
                        {short_set.attention_factor, long_set.attention_factor}, device);
}

}  // namespace ropejit
