// RoPE scaling variants and config.json reading: each variant against the published formula written
// anew here in long double, hand-derived values for tiny heads, real models' configs, and every bad
// config refused with an Error naming the field.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <unistd.h>

#include "check_error.hpp"
#include "ropejit/model.hpp"

using namespace ropejit;
using ropejit::test::check_error;

namespace {

using LD = long double;
const LD pi = 3.141592653589793238462643383279502884L;

void check_close(const std::vector<double>& got, const std::vector<LD>& want, double rel = 1e-14) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i)
    CHECK_MESSAGE(std::fabs(LD(got[i]) - want[i]) <= rel * std::fabs(want[i]),
                  fmt::format("pair {}: {:.17g} vs {:.17g}", i, got[i], double(want[i])));
}
void check_close(double got, LD want, double rel = 1e-14) {
  CHECK_MESSAGE(std::fabs(LD(got) - want) <= rel * std::fabs(want), fmt::format("{:.17g} vs {:.17g}", got, double(want)));
}

// theta_i = theta^(-2i/d), the RoPE paper's frequencies, through exp and log.
std::vector<LD> rope_paper(int d, LD theta) {
  std::vector<LD> out;
  for (int i = 0; i < d / 2; ++i) out.push_back(std::exp(-LD(2 * i) / d * std::log(theta)));
  return out;
}

// YaRN (Peng et al. 2023, and its reference code's linear ramp over dims): the dim i at which a
// wavelength 2 pi theta^(2i/d) fits `r` times in the original context L solves
// L / (2 pi theta^(2i/d)) = r, i = (d / 2) log_theta(L / (2 pi r)).
std::vector<LD> yarn_paper(int d, LD theta, LD s, LD L, LD beta_fast, LD beta_slow, bool truncate) {
  auto dim_at = [&](LD r) { return LD(d) / 2 * (std::log(L / (2 * pi * r)) / std::log(theta)); };
  LD lo = dim_at(beta_fast), hi = dim_at(beta_slow);
  if (truncate) lo = std::floor(lo), hi = std::ceil(hi);
  lo = std::max(lo, LD(0)), hi = std::min(hi, LD(d - 1));
  if (lo == hi) hi += 0.001L;
  std::vector<LD> out = rope_paper(d, theta);
  for (int i = 0; i < d / 2; ++i) {
    LD gamma = 1 - std::min(LD(1), std::max(LD(0), (i - lo) / (hi - lo)));  // 1: keep, 0: interpolate
    out[size_t(i)] *= gamma + (1 - gamma) / s;
  }
  return out;
}
LD yarn_mscale(LD s, LD m) { return s <= 1 ? 1 : 1 + std::log(s) * m / 10; }

// Llama 3.1's reference apply_scaling (meta-llama/llama-models), per frequency.
std::vector<LD> llama31_reference(int d, LD theta, LD factor, LD low, LD high, LD old_context) {
  std::vector<LD> out = rope_paper(d, theta);
  for (LD& f : out) {
    LD wavelen = 2 * pi / f;
    if (wavelen < old_context / high) continue;
    if (wavelen > old_context / low) {
      f /= factor;
      continue;
    }
    LD smooth = (old_context / wavelen - low) / (high - low);
    f *= (1 - smooth) / factor + smooth;
  }
  return out;
}

// LongRoPE (Phi-3): the rescale factors lambda_i divide the frequencies; the attention factor is
// sqrt(1 + ln(s) / ln(L)) for the extension s = L' / L.
std::vector<LD> longrope_paper(int d, LD theta, const std::vector<double>& lambda) {
  std::vector<LD> out;
  for (int i = 0; i < d / 2; ++i) out.push_back(std::exp(-std::log(LD(lambda[size_t(i)])) - LD(2 * i) / d * std::log(theta)));
  return out;
}

// What rotates: head_dim, rotary_dim, rotary_offset, q_heads, kv_heads, style.
struct Layout {
  int64_t head_dim, rotary_dim, rotary_offset, q_heads, kv_heads;
  RopeStyle style;
};
void check_layout(const ModelRope& m, const Layout& want) {
  CHECK(m.head_dim == want.head_dim);
  CHECK(m.rotary_dim == want.rotary_dim);
  CHECK(m.rotary_offset == want.rotary_offset);
  CHECK(m.q_heads == want.q_heads);
  CHECK(m.kv_heads == want.kv_heads);
  CHECK(m.style == want.style);
}

std::vector<double> ramp_factors(int n, double from, double to) {
  std::vector<double> v;
  for (int i = 0; i < n; ++i) v.push_back(from + (to - from) * i / (n - 1));
  return v;
}
std::string json_list(const std::vector<double>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += fmt::format("{}{:.17g}", i ? "," : "", v[i]);
  return s + "]";
}

}  // namespace

TEST_CASE("each variant matches its published formula") {
  SUBCASE("default") {
    for (int d : {2, 16, 64, 128, 256}) check_close(default_frequencies(d, 500000).inv_freq, rope_paper(d, 500000));
    CHECK(default_frequencies(64, 1e4).attention_factor == 1.0);
  }
  SUBCASE("linear") {
    auto want = rope_paper(128, 10000);
    for (LD& w : want) w /= 8;
    check_close(linear_frequencies(128, 10000, 8).inv_freq, want);
  }
  SUBCASE("dynamic NTK") {
    // base' = theta (s L'/L - (s - 1))^(d / (d - 2)) for a sequence of L' > L tokens.
    const int d = 128;
    const LD grown = 10000 * std::pow(LD(2) * 12000 / 4096 - 1, LD(d) / (d - 2));
    check_close(dynamic_frequencies(d, 10000, 2, 4096, 12000).inv_freq, rope_paper(d, grown));
    check_close(dynamic_frequencies(d, 10000, 2, 4096, 4096).inv_freq, rope_paper(d, 10000));
    check_close(dynamic_frequencies(d, 10000, 2, 4096, 10).inv_freq, rope_paper(d, 10000));
  }
  SUBCASE("yarn") {
    for (bool truncate : {true, false}) {
      auto f = yarn_frequencies(128, 1e6, 4, 32768, 32, 1, truncate, 1.25);
      check_close(f.inv_freq, yarn_paper(128, 1e6, 4, 32768, 32, 1, truncate));
      CHECK(f.attention_factor == 1.25);
    }
    check_close(yarn_frequencies(64, 10000, 40, 4096, 32, 1, true, 1).inv_freq, yarn_paper(64, 10000, 40, 4096, 32, 1, true));
    check_close(yarn_frequencies(64, 10000, 16, 4096, 24, 2, true, 1).inv_freq, yarn_paper(64, 10000, 16, 4096, 24, 2, true));
    check_close(yarn_attention_factor(4, 0, 0), yarn_mscale(4, 1));
    check_close(yarn_attention_factor(40, 0.707, 1.0), yarn_mscale(40, 0.707L) / yarn_mscale(40, 1));
    check_close(yarn_attention_factor(40, 0.707, 0), yarn_mscale(40, 1));  // both needed for the DeepSeek form
    CHECK(yarn_attention_factor(0.5, 0, 0) == 1.0);
  }
  SUBCASE("llama3") {
    check_close(llama3_frequencies(128, 500000, 8, 1, 4, 8192).inv_freq, llama31_reference(128, 500000, 8, 1, 4, 8192));
    check_close(llama3_frequencies(64, 10000, 32, 1, 4, 8192).inv_freq, llama31_reference(64, 10000, 32, 1, 4, 8192));
  }
  SUBCASE("longrope") {
    auto lambda = ramp_factors(48, 1.0, 3.5);
    auto f = longrope_frequencies(96, 10000, lambda, 1.19);
    check_close(f.inv_freq, longrope_paper(96, 10000, lambda));
    CHECK(f.attention_factor == 1.19);
    check_close(longrope_attention_factor(32, 4096), std::sqrt(1 + std::log(LD(32)) / std::log(LD(4096))));
    CHECK(longrope_attention_factor(1, 4096) == 1.0);
  }
}

TEST_CASE("hand-derived values for tiny heads") {
  // d = 8, theta = 10^4: theta^(-2i/8) = 10^-i.
  check_close(default_frequencies(8, 1e4).inv_freq, {1, 0.1L, 0.01L, 0.001L}, 1e-15);
  // linear, factor 4: 10^-i / 4.
  check_close(linear_frequencies(4, 1e4, 4).inv_freq, {0.25L, 0.0025L}, 1e-15);
  // dynamic, d = 4, factor 2, L = 1000, 2000 tokens: base = 10^4 (2 * 2 - 1)^(4/2) = 90000, so
  // [1, 90000^(-1/2) = 1/300].
  check_close(dynamic_frequencies(4, 1e4, 2, 1000, 2000).inv_freq, {1, 1 / 300.0L}, 1e-15);
  // yarn, d = 8, theta 10^4, factor 4, L = 4096: correction dims 4 ln(4096 / (2 pi 32)) / ln(10^4) =
  // 1.309 -> 1 and 4 ln(4096 / (2 pi)) / ln(10^4) = 2.814 -> 3; ramp (i - 1) / 2 = 0, 0, 0.5, 1; so
  // [1, 0.1, 0.01 (0.5 + 0.5 / 4), 0.001 / 4]; attention 0.1 ln 4 + 1.
  auto y = yarn_frequencies(8, 1e4, 4, 4096, 32, 1, true, yarn_attention_factor(4, 0, 0));
  check_close(y.inv_freq, {1, 0.1L, 0.00625L, 0.00025L}, 1e-15);
  check_close(y.attention_factor, 1.138629436111989L, 1e-15);
  // DeepSeek-V2: mscale 0.707, mscale_all_dim 1, factor 40: (1 + 0.0707 ln 40) / (1 + 0.1 ln 40).
  check_close(yarn_attention_factor(40, 0.707, 1.0), 0.9210423553163399L, 1e-15);
  // llama3, d = 4, theta 10^4: wavelengths 2 pi and 200 pi. L = 1024, factors 1 and 4: 2 pi < 256
  // is kept; 200 pi in [256, 1024] is smoothed: s = (1024 / (200 pi) - 1) / 3 = 0.2099155...,
  // 0.01 ((1 - s) / 8 + s). L = 100: 200 pi > 100 is divided by 8.
  check_close(llama3_frequencies(4, 1e4, 8, 1, 4, 1024).inv_freq, {1, 0.003086760967011274L}, 1e-15);
  check_close(llama3_frequencies(4, 1e4, 8, 1, 4, 100).inv_freq, {1, 0.00125L}, 1e-15);
  // longrope, d = 4: [1 / 1, 0.01 / 2]; 131072 / 4096 = 32 = 2^5 and 4096 = 2^12, so the attention
  // factor is sqrt(1 + 5/12) = sqrt(17/12).
  check_close(longrope_frequencies(4, 1e4, {1, 2}, 1).inv_freq, {1, 0.005L}, 1e-15);
  check_close(longrope_attention_factor(32, 4096), 1.1902380714238083L, 1e-15);
}

TEST_CASE("the building blocks refuse bad arguments") {
  const auto bad = ErrorKind::invalid_argument;
  check_error([] { default_frequencies(7, 1e4); }, bad, {"rotary_dim 7"});
  check_error([] { default_frequencies(0, 1e4); }, bad, {"rotary_dim 0"});
  check_error([] { default_frequencies(64, 1.0); }, bad, {"theta"});
  check_error([] { linear_frequencies(64, 1e4, 0); }, bad, {"factor"});
  check_error([] { dynamic_frequencies(2, 1e4, 2, 4096, 8192); }, bad, {"rotary_dim 2"});
  check_error([] { dynamic_frequencies(64, 1e4, 2, 4096, -1); }, bad, {"seq_len"});
  check_error([] { yarn_frequencies(64, 1e4, 4, 4096, -1, 1, true, 1); }, bad, {"beta"});
  check_error([] { llama3_frequencies(64, 1e4, 8, 4, 4, 8192); }, bad, {"high_freq_factor"});
  check_error([] { longrope_frequencies(8, 1e4, {1, 2, 3}, 1); }, bad, {"3 factors"});
  check_error([] { longrope_frequencies(4, 1e4, {1, 0}, 1); }, bad, {"factor 1"});
  ModelRope m;
  m.rotary_dim = 64;
  check_error([&] { m.frequencies(-1); }, bad, {"seq_len"});
  m.scaling = RopeScaling::longrope;  // no factor lists
  check_error([&] { m.frequencies(0); }, bad, {"0 factors"});
}

TEST_CASE("configs of real models") {
  SUBCASE("Llama-3-8B") {
    auto m = rope_from_config(R"({"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":4096,
      "num_attention_heads":32,"num_key_value_heads":8,"max_position_embeddings":8192,"rope_theta":500000.0,
      "rope_scaling":null,"head_dim":null})");
    check_layout(m, {128, 128, 0, 32, 8, RopeStyle::neox});
    CHECK(m.scaling == RopeScaling::none);
    check_close(m.frequencies().inv_freq, rope_paper(128, 500000));
    CHECK(m.frequencies().attention_factor == 1.0);
  }
  const auto llama31 = llama31_reference(128, 500000, 8, 1, 4, 8192);
  SUBCASE("Llama-3.1-8B") {
    auto m = rope_from_config(R"({"model_type":"llama","hidden_size":4096,"num_attention_heads":32,
      "num_key_value_heads":8,"max_position_embeddings":131072,"rope_theta":500000.0,
      "rope_scaling":{"factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,
                      "original_max_position_embeddings":8192,"rope_type":"llama3"}})");
    CHECK(m.scaling == RopeScaling::llama3);
    CHECK(m.original_max_position_embeddings == 8192);
    check_close(m.frequencies(100000).inv_freq, llama31);
  }
  SUBCASE("transformers v5 rope_parameters (Llama-3.1-8B)") {
    auto m = rope_from_config(R"({"model_type":"llama","hidden_size":4096,"num_attention_heads":32,
      "num_key_value_heads":8,"max_position_embeddings":131072,
      "rope_parameters":{"rope_type":"llama3","rope_theta":500000.0,"factor":8.0,"low_freq_factor":1.0,
                         "high_freq_factor":4.0,"original_max_position_embeddings":8192}})");
    CHECK(m.scaling == RopeScaling::llama3);
    CHECK(m.theta == 500000.0);
    check_close(m.frequencies().inv_freq, llama31);
  }
  SUBCASE("Qwen2.5-7B with YaRN") {
    auto m = rope_from_config(R"({"model_type":"qwen2","hidden_size":3584,"num_attention_heads":28,
      "num_key_value_heads":4,"max_position_embeddings":32768,"rope_theta":1000000.0,
      "rope_scaling":{"type":"yarn","factor":4.0,"original_max_position_embeddings":32768}})");
    check_layout(m, {128, 128, 0, 28, 4, RopeStyle::neox});
    CHECK(m.scaling == RopeScaling::yarn);
    CHECK(m.factor == 4.0);  // as given (transformers v5), not max / original
    auto f = m.frequencies();
    check_close(f.inv_freq, yarn_paper(128, 1e6, 4, 32768, 32, 1, true));
    check_close(f.attention_factor, yarn_mscale(4, 1));
  }
  SUBCASE("DeepSeek-V3") {
    auto m = rope_from_config(R"({"model_type":"deepseek_v3","hidden_size":7168,"num_attention_heads":128,
      "num_key_value_heads":128,"qk_nope_head_dim":128,"qk_rope_head_dim":64,"v_head_dim":128,
      "kv_lora_rank":512,"q_lora_rank":1536,"max_position_embeddings":163840,"rope_theta":10000,
      "rope_scaling":{"beta_fast":32,"beta_slow":1,"factor":40,"mscale":1.0,"mscale_all_dim":1.0,
                      "original_max_position_embeddings":4096,"type":"yarn"}})");
    check_layout(m, {192, 64, 128, 128, 128, RopeStyle::gptj});
    CHECK(m.mscale == 1.0);
    auto f = m.frequencies();
    check_close(f.inv_freq, yarn_paper(64, 10000, 40, 4096, 32, 1, true));
    CHECK(f.attention_factor == 1.0);  // get_mscale(40, 1) / get_mscale(40, 1)
  }
  SUBCASE("Phi-3-mini-128k (longrope)") {
    const auto short_f = ramp_factors(48, 1.0, 1.2), long_f = ramp_factors(48, 1.1, 40.0);
    auto m = rope_from_config(fmt::format(R"({{"model_type":"phi3","hidden_size":3072,"num_attention_heads":32,
      "num_key_value_heads":32,"max_position_embeddings":131072,"original_max_position_embeddings":4096,
      "rope_theta":10000.0,"rope_scaling":{{"type":"longrope","short_factor":{},"long_factor":{}}}}})",
                                          json_list(short_f), json_list(long_f)));
    check_layout(m, {96, 96, 0, 32, 32, RopeStyle::neox});
    CHECK(m.scaling == RopeScaling::longrope);
    CHECK(m.original_max_position_embeddings == 4096);
    CHECK(m.factor == 32.0);
    const LD attention = std::sqrt(17.0L / 12);
    for (int64_t seq : {0, 1, 4096}) {
      auto f = m.frequencies(seq);
      check_close(f.inv_freq, longrope_paper(96, 10000, short_f));
      check_close(f.attention_factor, attention);
    }
    for (int64_t seq : {4097, 131072}) {
      auto f = m.frequencies(seq);
      check_close(f.inv_freq, longrope_paper(96, 10000, long_f));
      check_close(f.attention_factor, attention);
    }
    // Phi-3's first configs said "su", and Phi3Config renames "su" and "yarn" to longrope.
    auto su = rope_from_config(fmt::format(R"({{"model_type":"phi3","hidden_size":3072,"num_attention_heads":32,
      "max_position_embeddings":131072,"original_max_position_embeddings":4096,
      "rope_scaling":{{"type":"su","short_factor":{},"long_factor":{}}}}})", json_list(short_f), json_list(long_f)));
    CHECK(su.scaling == RopeScaling::longrope);
  }
  SUBCASE("Qwen2-VL (mrope sections)") {
    auto m = rope_from_config(R"({"model_type":"qwen2_vl","hidden_size":3584,"num_attention_heads":28,
      "num_key_value_heads":4,"max_position_embeddings":32768,"rope_theta":1000000.0,
      "rope_scaling":{"type":"mrope","mrope_section":[16,24,24]}})");
    CHECK(m.scaling == RopeScaling::none);
    CHECK(m.mrope_section == std::vector<int64_t>{16, 24, 24});
    CHECK_FALSE(m.mrope_interleaved);
    check_close(m.frequencies().inv_freq, rope_paper(128, 1e6));
  }
  SUBCASE("Qwen3-VL (text_config, interleaved mrope)") {
    auto m = rope_from_config(R"({"model_type":"qwen3_vl","vision_config":{"depth":27,"hidden_size":1152},
      "text_config":{"model_type":"qwen3_vl_text","hidden_size":4096,"num_attention_heads":32,
        "num_key_value_heads":8,"head_dim":128,"max_position_embeddings":262144,"rope_theta":5000000,
        "rope_scaling":{"mrope_interleaved":true,"mrope_section":[24,20,20],"rope_type":"default"}}})");
    check_layout(m, {128, 128, 0, 32, 8, RopeStyle::neox});
    CHECK(m.mrope_section == std::vector<int64_t>{24, 20, 20});
    CHECK(m.mrope_interleaved);
    check_close(m.frequencies().inv_freq, rope_paper(128, 5e6));
  }
  SUBCASE("Pythia-70m (rotary_pct)") {
    auto m = rope_from_config(R"({"model_type":"gpt_neox","hidden_size":512,"num_attention_heads":8,
      "rotary_pct":0.25,"rotary_emb_base":10000,"max_position_embeddings":2048})");
    check_layout(m, {64, 16, 0, 8, 8, RopeStyle::neox});
    check_close(m.frequencies().inv_freq, rope_paper(16, 10000));
  }
  SUBCASE("Phi-2 (partial_rotary_factor)") {
    auto m = rope_from_config(R"({"model_type":"phi","hidden_size":2560,"num_attention_heads":32,
      "partial_rotary_factor":0.4,"rope_theta":10000.0,"max_position_embeddings":2048})");
    check_layout(m, {80, 32, 0, 32, 32, RopeStyle::neox});
    check_close(m.frequencies().inv_freq, rope_paper(32, 10000));
  }
  SUBCASE("GPT-J-6B (rotary_dim, interleaved)") {
    auto m = rope_from_config(R"({"model_type":"gptj","n_embd":4096,"n_head":16,"n_positions":2048,
      "rotary_dim":64})");
    check_layout(m, {256, 64, 0, 16, 16, RopeStyle::gptj});
    CHECK(m.max_position_embeddings == 2048);
    check_close(m.frequencies().inv_freq, rope_paper(64, 10000));
  }
  SUBCASE("Gemma-7B (head_dim given)") {
    auto m = rope_from_config(R"({"model_type":"gemma","hidden_size":3072,"num_attention_heads":16,
      "num_key_value_heads":16,"head_dim":256,"rope_theta":10000.0,"max_position_embeddings":8192})");
    check_layout(m, {256, 256, 0, 16, 16, RopeStyle::neox});  // head_dim given, not 3072 / 16
    check_close(m.frequencies().inv_freq, rope_paper(256, 10000));
  }
  SUBCASE("linear and dynamic") {
    auto lin = rope_from_config(R"({"hidden_size":4096,"num_attention_heads":32,"rope_theta":10000,
      "rope_scaling":{"type":"linear","factor":2}})");
    auto want = rope_paper(128, 10000);
    for (LD& w : want) w /= 2;
    check_close(lin.frequencies().inv_freq, want);
    auto dyn = rope_from_config(R"({"hidden_size":4096,"num_attention_heads":32,"max_position_embeddings":4096,
      "rope_scaling":{"rope_type":"dynamic","factor":2.0}})");
    check_close(dyn.frequencies(4096).inv_freq, rope_paper(128, 10000));
    const LD grown = 10000 * std::pow(LD(2) * 16384 / 4096 - 1, LD(128) / 126);
    check_close(dyn.frequencies(16384).inv_freq, rope_paper(128, grown));
  }
  SUBCASE("a file on disk, integral floats") {
    auto path = std::filesystem::temp_directory_path() / fmt::format("ropejit-config-{}.json", ::getpid());
    std::ofstream(path) << R"(  {"hidden_size":2048.0,"num_attention_heads":16,"rope_theta":10000})";
    auto m = rope_from_config(path.string());
    std::filesystem::remove(path);
    CHECK(m.head_dim == 128);
  }
}

TEST_CASE("bad configs name the field") {
  // A Llama-3.1 config with one field replaced.
  auto llama = [](const std::string& field, const std::string& value) {
    std::string rope = R"("rope_scaling":{"factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":8192,"rope_type":"llama3"})";
    std::string top = R"("hidden_size":4096,"num_attention_heads":32,"num_key_value_heads":8,"max_position_embeddings":131072,"rope_theta":500000.0)";
    std::string text = "{" + top + "," + rope + "}";
    const std::string key = "\"" + field.substr(field.rfind('.') + 1) + "\":";
    const size_t at = field.find('.') == std::string::npos ? text.find(key) : text.find(key, text.find("rope_scaling"));
    if (at == std::string::npos) return text.substr(0, text.size() - 1) + "," + key + value + "}";
    const size_t end = text.find_first_of(",}", at + key.size());
    return text.substr(0, at) + key + value + text.substr(end);
  };
  auto refuse = [&](const std::string& json, std::initializer_list<std::string> words, ErrorKind kind = ErrorKind::invalid_argument) {
    CAPTURE(json);
    check_error([&] { rope_from_config(json); }, kind, words);
  };
  SUBCASE("the harness builds what it means") {
    CHECK(rope_from_config(llama("rope_scaling.factor", "8")).factor == 8.0);
    CHECK(rope_from_config(llama("head_dim", "64")).head_dim == 64);
  }
  SUBCASE("wrong types in every field") {
    for (auto [field, value] : std::vector<std::pair<std::string, std::string>>{
             {"hidden_size", "\"4096\""}, {"hidden_size", "4096.5"}, {"num_attention_heads", "[32]"},
             {"num_attention_heads", "true"}, {"num_key_value_heads", "{}"}, {"head_dim", "128.5"},
             {"head_dim", "\"128\""}, {"head_dim", "true"}, {"max_position_embeddings", "\"big\""},
             {"rope_theta", "\"1e4\""}, {"rope_theta", "[1]"}, {"partial_rotary_factor", "\"half\""},
             {"rope_scaling.factor", "\"8\""},
             {"rope_scaling.low_freq_factor", "null"}, {"rope_scaling.high_freq_factor", "false"},
             {"rope_scaling.original_max_position_embeddings", "8192.5"}, {"rope_scaling.rope_type", "3"},
             {"model_type", "5"}, {"text_config", "\"x\""}, {"rope_parameters", "1"}}) {
      refuse(llama(field, value), {field.substr(field.rfind('.') + 1) + ":"});
    }
    refuse(llama("rope_scaling.rope_type", "\"yarn\",\"truncate\":1"), {"rope_scaling.truncate:", "true or false"});
    refuse(llama("rope_scaling.rope_type", "\"yarn\",\"beta_fast\":\"32\""), {"rope_scaling.beta_fast:"});
    refuse(llama("rope_scaling.rope_type", "\"yarn\",\"mscale\":[1]"), {"rope_scaling.mscale:"});
    refuse(llama("rope_scaling.rope_type", "\"yarn\",\"attention_factor\":\"1\""), {"rope_scaling.attention_factor:"});
    refuse(llama("rope_scaling.rope_type", "\"default\",\"mrope_section\":[16,24,\"24\"]"), {"rope_scaling.mrope_section:", "item 2"});
    refuse(llama("rope_scaling.rope_type", "\"default\",\"mrope_section\":16"), {"rope_scaling.mrope_section:"});
    refuse(llama("rope_scaling.rope_type", "\"default\",\"mrope_section\":[16,24,24],\"mrope_interleaved\":\"yes\""),
           {"rope_scaling.mrope_interleaved:"});
    refuse(llama("rope_scaling.rope_type", "\"longrope\",\"short_factor\":\"x\""), {"rope_scaling.short_factor:"});
    refuse(llama("rope_scaling.rope_type", "\"longrope\",\"short_factor\":[1,\"a\"]"), {"rope_scaling.short_factor:", "item 1"});
    refuse(llama("rotary_dim", "\"64\""), {"rotary_dim:"});
    refuse(llama("qk_rope_head_dim", "64.5"), {"qk_rope_head_dim:"});
    for (const char* rope : {"5", "[]", "\"yarn\""})
      refuse(fmt::format(R"({{"hidden_size":4096,"num_attention_heads":32,"rope_scaling":{}}})", rope), {"rope_scaling:", "object"});
    refuse(R"({"model_type":"deepseek_v3","hidden_size":7168,"num_attention_heads":128,"qk_nope_head_dim":128,
             "qk_rope_head_dim":64,"rope_interleave":1})", {"rope_interleave:", "true or false"});
  }
  SUBCASE("bad values") {
    refuse(llama("rope_scaling.rope_type", "\"ntk-by-parts\""), {"rope_scaling.rope_type:", "unknown rope_type"});
    refuse(llama("rope_scaling.rope_type", "\"proportional\""), {"rope_scaling.rope_type:"}, ErrorKind::unsupported);
    refuse(R"({"hidden_size":4096,"num_attention_heads":32,"rope_scaling":{"type":"linear"}})", {"rope_scaling.factor:", "missing"});
    refuse(llama("rope_scaling.factor", "0"), {"rope_scaling.factor:", "positive"});
    refuse(llama("rope_scaling.factor", "-2"), {"rope_scaling.factor:"});
    refuse(R"({"hidden_size":4096,"num_attention_heads":32,"max_position_embeddings":8192,
             "rope_scaling":{"factor":8,"rope_type":"llama3","high_freq_factor":4}})",
           {"rope_scaling.low_freq_factor:", "missing"});
    refuse(llama("rope_scaling.high_freq_factor", "1.0"), {"rope_scaling.high_freq_factor:"});
    refuse(llama("rope_theta", "1"), {"rope_theta:"});
    // nlohmann refuses numbers that overflow a double, so no infinity reaches the reader.
    refuse(llama("rope_theta", "1e999"), {"not valid JSON"});
    refuse(llama("hidden_size", "-1e999"), {"not valid JSON"});
    refuse(llama("num_attention_heads", "0"), {"num_attention_heads:"});
    refuse(llama("num_attention_heads", "-32"), {"num_attention_heads:"});
    refuse(llama("num_attention_heads", "18446744073709551615"), {"num_attention_heads:"});
    refuse(llama("num_key_value_heads", "5"), {"num_key_value_heads:", "divide"});
    refuse(llama("head_dim", "0"), {"head_dim:"});
    refuse(llama("partial_rotary_factor", "1.5"), {"partial_rotary_factor:"});
    refuse(llama("partial_rotary_factor", "0"), {"partial_rotary_factor:"});
    refuse(llama("partial_rotary_factor", "0.3984375"), {"partial_rotary_factor:", "even"});  // 128 x 0.3984375 = 51
    refuse(llama("rotary_dim", "256"), {"rotary_dim:", "does not fit"});
    refuse(llama("rotary_dim", "63"), {"rotary_dim:", "even"});
    refuse(llama("qk_rope_head_dim", "64"), {"qk_nope_head_dim:", "missing"});
    refuse(R"({"hidden_size":4096,"num_attention_heads":32,"rope_scaling":{"type":"linear","factor":2,"partial_rotary_factor":0.5},
             "partial_rotary_factor":0.25})", {"rope_scaling.partial_rotary_factor:", "differs"});
  }
  SUBCASE("scaling parameters that do not fit") {
    const std::string head = R"({"hidden_size":4096,"num_attention_heads":32,"max_position_embeddings":131072,)";
    refuse(head + R"("rope_scaling":{"type":"longrope","short_factor":[1,2],"long_factor":[1,2]}})", {"rope_scaling.short_factor:", "needs 64"});
    refuse(head + fmt::format(R"("rope_scaling":{{"type":"longrope","short_factor":{},"long_factor":[1]}}}})", json_list(ramp_factors(64, 1, 2))),
           {"rope_scaling.long_factor:", "needs 64"});
    refuse(head + fmt::format(R"("rope_scaling":{{"type":"longrope","short_factor":{},"long_factor":{}}}}})", json_list(ramp_factors(64, 0, 2)),
                              json_list(ramp_factors(64, 1, 2))),
           {"rope_scaling.short_factor:", "item 0"});
    refuse(head + R"("rope_scaling":{"type":"longrope","long_factor":[1]}})", {"rope_scaling.short_factor:", "missing"});
    refuse(head + R"("rope_scaling":{"type":"mrope","mrope_section":[16,24,16]}})", {"rope_scaling.mrope_section:", "adds up to 56"});
    refuse(head + R"("rope_scaling":{"type":"mrope","mrope_section":[32,32]}})", {"rope_scaling.mrope_section:", "3 sections"});
    refuse(head + R"("rope_scaling":{"type":"mrope","mrope_section":[64,-1,1]}})", {"rope_scaling.mrope_section:"});
    refuse(head + R"("rope_scaling":{"mrope_section":[0,32,32],"mrope_interleaved":true}})", {"rope_scaling.mrope_section:", "interleaved"});
    refuse(head + R"("rope_scaling":{"mrope_interleaved":true}})", {"rope_scaling.mrope_interleaved:"});
    refuse(head + R"("rope_scaling":{"type":"yarn","factor":4,"beta_fast":-1}})", {"rope_scaling.beta_fast:"});
    refuse(head + R"("rope_scaling":{"type":"yarn","factor":4,"attention_factor":0}})", {"rope_scaling.attention_factor:"});
    refuse(head + R"("rope_scaling":{"type":"yarn","factor":40,"mscale":1,"mscale_all_dim":-2.712}})", {"rope_scaling.mscale_all_dim:"});
    refuse(head + R"("rope_scaling":{"type":"yarn"}})", {"rope_scaling.factor:", "missing"});
    refuse(R"({"hidden_size":4096,"num_attention_heads":32,"rope_scaling":{"type":"dynamic","factor":2}})",
           {"max_position_embeddings:", "missing"});
    refuse(R"({"hidden_size":4096,"num_attention_heads":32,"rope_scaling":{"type":"yarn","factor":2}})",
           {"original_max_position_embeddings:", "missing"});
    refuse(head + R"("rope_scaling":{"type":"longrope","short_factor":[],"long_factor":[]}})", {"rope_scaling.short_factor:", "has 0"});
    refuse(head + R"("original_max_position_embeddings":1,"rope_scaling":{"type":"longrope","short_factor":[)" +
               json_list(ramp_factors(64, 1, 2)).substr(1) + R"(,"long_factor":)" + json_list(ramp_factors(64, 1, 2)) + "}}",
           {"original_max_position_embeddings:", "attention factor"});
    refuse(R"({"layer_types":["full_attention","sliding_attention"],"hidden_size":4096,"num_attention_heads":32,
             "rope_parameters":{"full_attention":{"rope_type":"default"},"sliding_attention":{"rope_type":"default"}}})",
           {"rope_parameters:", "per-layer"}, ErrorKind::unsupported);
  }
  SUBCASE("missing fields, garbage and files") {
    refuse(R"({"hidden_size":4096})", {"num_attention_heads:", "missing"});
    refuse(R"({"num_attention_heads":32})", {"hidden_size:", "missing"});
    refuse(R"({"text_config":{"num_attention_heads":32}})", {"text_config.hidden_size:", "missing"});
    refuse(R"({"text_config":{"hidden_size":4096,"num_attention_heads":32,"rope_scaling":{"type":"linear","factor":"2"}}})",
           {"text_config.rope_scaling.factor:"});
    refuse("{", {"config.json", "not valid JSON"});
    refuse("{\"hidden_size\": 4096,}", {"not valid JSON"});
    refuse("{\"a\":1} trailing", {"not valid JSON"});
    refuse("  [1, 2]", {"config.json"}, ErrorKind::io);  // not '{': a path, which does not exist
    refuse("/nonexistent-dir/config.json", {"/nonexistent-dir/config.json"}, ErrorKind::io);
    refuse("", {"config.json"}, ErrorKind::io);
    auto dir = std::filesystem::temp_directory_path() / fmt::format("ropejit-config-dir-{}", ::getpid());
    std::filesystem::create_directories(dir);
    auto path = dir / "config.json";
    std::ofstream(path) << "[1, 2]";
    refuse(path.string(), {"must be a JSON object"});
    std::ofstream(path) << "\xff\xfe garbage";
    refuse(path.string(), {"not valid JSON"});
    std::filesystem::remove_all(dir);
  }
}
