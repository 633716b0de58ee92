// The config.json reader (rope_from_config) on the input as JSON text, and the frequencies of what it
// accepts at sequence lengths on both sides of every threshold (dynamic NTK, LongRoPE's switch).
#include <cmath>
#include <cstdint>
#include <string>

#include "fuzz_common.hpp"
#include "ropejit/model.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  if (text.find_first_not_of(" \t\r\n") == std::string::npos || text[text.find_first_not_of(" \t\r\n")] != '{')
    text.insert(0, "{");  // always JSON text, never a path
  ropejit::ModelRope m;
  try {
    m = ropejit::rope_from_config(text);
  } catch (const ropejit::Error& e) {
    fuzz::check_error(e);
    return 0;
  }
  // What the reader accepted fits together: frequencies never throw, and are finite.
  if (m.rotary_offset + m.rotary_dim > m.head_dim || m.rotary_dim % 2) std::abort();
  for (int64_t seq : {int64_t(0), m.original_max_position_embeddings, m.original_max_position_embeddings + 1,
                      m.max_position_embeddings, 2 * m.max_position_embeddings + 7}) {
    try {
      auto f = m.frequencies(seq);
      if (int64_t(f.inv_freq.size()) != m.rotary_dim / 2 || !std::isfinite(f.attention_factor)) std::abort();
      for (double v : f.inv_freq)
        if (!std::isfinite(v) || v < 0) std::abort();
    } catch (const ropejit::Error& e) {  // only dynamic NTK's base may overflow at a huge seq_len
      fuzz::check_error(e);
      if (m.scaling != ropejit::RopeScaling::dynamic) std::abort();
    }
  }
  return 0;
}
