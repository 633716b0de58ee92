// ropejit-rope-config: what ropejit reads from a model's config.json, as JSON: the head layout, the
// style, the scaling and the frequencies (full precision) for one sequence length. For scripts (such
// as python/tests/hf_rope_check.py) that compare with transformers.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <string>

#include "ropejit/model.hpp"

using namespace ropejit;

namespace {

template <typename T>
std::string json_list(const std::vector<T>& v, const char* format) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + fmt::format(fmt::runtime(format), v[i]);
  return out + "]";
}

void print(const ModelRope& m, int64_t seq_len) {
  const RopeFrequencies f = m.frequencies(seq_len);
  fmt::print("{{\n");
  fmt::print("  \"head_dim\": {}, \"rotary_dim\": {}, \"rotary_offset\": {},\n", m.head_dim, m.rotary_dim, m.rotary_offset);
  fmt::print("  \"q_heads\": {}, \"kv_heads\": {},\n", m.q_heads, m.kv_heads);
  fmt::print("  \"style\": \"{}\", \"scaling\": \"{}\",\n", m.style == RopeStyle::gptj ? "gptj" : "neox",
             rope_scaling_name(m.scaling));
  fmt::print("  \"mrope_section\": {}, \"mrope_interleaved\": {},\n", json_list(m.mrope_section, "{}"),
             m.mrope_interleaved ? "true" : "false");
  fmt::print("  \"seq_len\": {},\n", seq_len);
  fmt::print("  \"attention_factor\": {:.17g},\n", f.attention_factor);
  fmt::print("  \"inv_freq\": {}\n}}\n", json_list(f.inv_freq, "{:.17g}"));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ropejit-rope-config: a model's RoPE from its config.json, as JSON"};
  std::string config;
  int64_t seq_len = 0;
  app.add_option("config", config, "config.json path, or the JSON text itself")->required();
  app.add_option("--seq-len", seq_len, "longest sequence of the call: max position + 1 (dynamic NTK, LongRoPE)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help is 0; every bad flag is 2, as a bad config
  }
  try {
    print(rope_from_config(config), seq_len);
  } catch (const Error& e) {
    fmt::print(stderr, "ropejit-rope-config: {}\n", e.what());
    return 2;
  }
  return 0;
}
