// The rotations real checkpoints use, as specialisations of the rotating kernels, on the host backend
// against the fp64 reference: a rotary part placed inside the head (MLA), an output dtype of its own,
// multimodal positions (Qwen2-VL sections, Qwen3-VL interleaved), HuggingFace's f32 angles
// (hf_compat), the backward as the forward's gradient (finite differences), and their bad input.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "check_error.hpp"
#include "support.hpp"

using namespace ropejit;
using namespace ropejit::test;

namespace {
void check_run(const Case& c, uint64_t seed, double* worst = nullptr) {
  INFO(c.describe());
  const auto r = run_case(c, Backend::host, seed);
  CHECK_MESSAGE(r.q.ok(), "q: " << r.q.mismatches << " of " << r.q.checked << " wrong, first " << r.q.first_mismatch);
  if (c.k_heads)
    CHECK_MESSAGE(r.k.ok(), "k: " << r.k.mismatches << " of " << r.k.checked << " wrong, first " << r.k.first_mismatch);
  CHECK_MESSAGE(r.gaps_untouched, "memory outside the output view (or an out-of-place input) was written");
  if (worst) *worst = std::max({*worst, r.q.max_error_in_tolerances, r.k.max_error_in_tolerances});
}
const DType kDtypes[] = {DType::f32, DType::f16, DType::bf16};
}  // namespace

TEST_CASE("variants: a rotary part inside the head (rotary_offset): DeepSeek's last 64 of 192, and others") {
  uint64_t seed = 7100;
  const int shapes[][3] = {{192, 64, 128}, {64, 32, 16}, {128, 64, 32}, {80, 16, 62}, {256, 128, 128}};
  for (const auto& sh : shapes)
    for (RopeStyle style : {RopeStyle::neox, RopeStyle::gptj})
      for (DType dtype : kDtypes)
        for (bool in_place : {true, false}) {
          Case c;
          c.head_dim = sh[0];
          c.rotary_dim = sh[1];
          c.rotary_offset = sh[2];
          c.style = style;
          c.dtype = dtype;
          c.in_place = in_place;
          c.q_heads = 16;
          c.k_heads = seed % 3 ? 1 : 0;
          c.layout = seed % 4 == 0 ? Layout::padded : Layout::bshd;
          c.exact_angles = seed % 5 == 2;
          c.pos = seed % 2 ? Pos::ids32 : Pos::offset;
          check_run(c, seed++);
        }
}

TEST_CASE("variants: outputs of another dtype (bf16 in, f32 out, and the reverse), partial rotary copied across") {
  uint64_t seed = 7200;
  const DType pairs[][2] = {{DType::bf16, DType::f32}, {DType::f16, DType::f32}, {DType::f32, DType::bf16},
                            {DType::bf16, DType::f16}, {DType::f16, DType::bf16}, {DType::f32, DType::f16}};
  for (const auto& p : pairs)
    for (RopeStyle style : {RopeStyle::neox, RopeStyle::gptj})
      for (int rotary : {128, 64})
        for (Layout layout : {Layout::bshd, Layout::padded}) {
          Case c;
          c.dtype = p[0];
          c.out_dtype = p[1];
          c.in_place = false;
          c.style = style;
          c.rotary_dim = rotary;
          c.rotary_offset = seed % 3 == 0 && rotary == 64 ? 32 : 0;
          c.layout = layout;
          c.exact_angles = seed % 2;
          check_run(c, seed++);
        }
}

TEST_CASE("variants: multimodal RoPE, Qwen2-VL sections and Qwen3-VL interleaved, table, exact and hf_compat") {
  uint64_t seed = 7300;
  struct Mm {
    std::array<int, 3> section;
    bool interleaved;
    int head_dim;
  };
  const Mm cases[] = {{{16, 24, 24}, false, 128}, {{24, 20, 20}, true, 128}, {{8, 12, 12}, false, 64},
                      {{10, 11, 11}, true, 64},   {{0, 32, 32}, false, 128}, {{32, 0, 0}, true, 64}};
  for (const auto& m : cases)
    for (RopeStyle style : {RopeStyle::neox, RopeStyle::gptj})
      for (int angles : {0, 1, 2}) {
        Case c;
        c.mrope_section = m.section;
        c.mrope_interleaved = m.interleaved;
        c.head_dim = c.rotary_dim = m.head_dim;
        c.style = style;
        c.dtype = kDtypes[seed % 3];
        c.pos = seed % 2 ? Pos::ids64 : Pos::ids32;
        c.in_place = seed % 4 != 1;
        c.exact_angles = angles > 0;
        c.hf_compat = angles == 2;
        c.table_dtype = seed % 5 == 0 && angles == 0 ? DType::bf16 : DType::f32;
        c.layout = seed % 3 == 0 ? Layout::bhsd : Layout::bshd;
        c.tokens = seed % 4 == 2 ? 4 : 0;
        check_run(c, seed++);
      }
}

TEST_CASE("variants: multimodal positions really are per section: a single-component result differs") {
  // The same call with t = h = w equals plain RoPE; with h and w ids changed only the pairs of their
  // sections change. Checked through the reference, which the previous case holds the kernel to.
  const int64_t D = 16, P = 8;
  std::vector<float> x(D), y1(D), y2(D);
  std::mt19937_64 rng(5);
  for (auto& v : x) v = std::uniform_real_distribution<float>(-1, 1)(rng);
  RopeTable table(Backend::host, 64, D, 10000.0);
  auto run = [&](std::vector<int32_t> ids, std::vector<float>& out) {
    std::memcpy(out.data(), x.data(), D * 4);
    RopeOptions opt;
    opt.backend = Backend::host;
    opt.mrope_section = {2, 3, 3};
    apply_rope(TensorView::bshd(out.data(), DType::f32, 1, 1, 1, D), nullptr, Positions::multimodal(ids.data(), DType::i32),
               table.view(), opt);
  };
  run({7, 7, 7}, y1);
  std::vector<float> plain(x);
  RopeOptions opt;
  opt.backend = Backend::host;
  apply_rope(TensorView::bshd(plain.data(), DType::f32, 1, 1, 1, D), nullptr, Positions::contiguous(7), table.view(), opt);
  CHECK(std::memcmp(plain.data(), y1.data(), D * 4) == 0);
  run({7, 9, 7}, y2);  // h moves: pairs 2..4 (elements 2..4 and 10..12) change, no others
  for (int64_t d = 0; d < D; ++d) {
    const bool in_h = (d % P) >= 2 && (d % P) < 5;
    INFO("element " << d);
    CHECK((y1[size_t(d)] != y2[size_t(d)]) == in_h);
  }
}

TEST_CASE("variants: hf_compat angles (f32 position x f32 inv_freq) at positions 0 to 2^31 - 1, theta 1e4 to 1e7") {
  uint64_t seed = 7400;
  double worst = 0;
  for (int64_t base : {int64_t(0), (int64_t(1) << 24) + 1, (int64_t(1) << 31) - 400})
    for (double theta : {1e4, 5e5, 1e7})
      for (RopeStyle style : {RopeStyle::neox, RopeStyle::gptj}) {
        Case c;
        c.exact_angles = c.hf_compat = true;
        c.position_base = base;
        c.theta = theta;
        c.style = style;
        c.dtype = kDtypes[seed % 3];
        c.pos = seed % 2 ? Pos::ids64 : Pos::offset;
        c.in_place = seed % 4 != 1;
        c.rotary_dim = seed % 5 == 0 ? 64 : 128;
        c.inverse = seed % 7 == 3;
        c.seq = 9;
        check_run(c, seed++, &worst);
      }
  MESSAGE("hf_compat angles: worst error " << worst << " of the tolerance");
}

TEST_CASE("variants: hf_compat and exact differ where f32 angles lose phase, and agree where they do not") {
  const int64_t D = 128;
  auto freqs = FrequencyTable::from_theta(Backend::host, D, 10000.0);
  std::vector<float> x(D);
  std::mt19937_64 rng(9);
  for (auto& v : x) v = std::uniform_real_distribution<float>(-1, 1)(rng);
  auto rotate = [&](int64_t pos, AngleMode mode) {
    std::vector<float> y(x);
    RopeOptions opt;
    opt.backend = Backend::host;
    apply_rope(TensorView::bshd(y.data(), DType::f32, 1, 1, 1, D), nullptr, Positions::contiguous(pos), freqs.view(mode), opt);
    return y;
  };
  // Position 3: f32(3) x f32(1) is exact for pair 0, so pair 0 agrees to the bit.
  CHECK(rotate(3, AngleMode::exact)[0] == rotate(3, AngleMode::hf_compat)[0]);
  // Position 2^24 + 1 rounds to 2^24 in f32: pair 0's angle is 1 rad off, which the output shows.
  const int64_t far = (int64_t(1) << 24) + 1;
  CHECK(std::fabs(rotate(far, AngleMode::exact)[0] - rotate(far, AngleMode::hf_compat)[0]) > 1e-3);
  CHECK(std::fabs(rotate(far, AngleMode::hf_compat)[0] - rotate(far - 1, AngleMode::exact)[0]) < 1e-6);
}

TEST_CASE("variants: frequency sets chosen per sequence (LongRoPE's short and long), varlen and dense") {
  CHECK(check_frequency_sets(Backend::host) == 2 * (4 + 3));
}

TEST_CASE("variants: the backward is the forward's gradient, by central finite differences in fp64") {
  // L(x) = <w, rope(x)>: dL/dx from the backward kernel (rope_backward(w)) against
  // (L(x + h v) - L(x - h v)) / 2h for random directions v, with the forward kernel in f32.
  const int64_t B = 1, S = 3, H = 2, D = 64;
  const int64_t n = B * S * H * D;
  std::mt19937_64 rng(77);
  std::uniform_real_distribution<double> u(-1, 1);
  auto freqs = FrequencyTable::from_theta(Backend::host, D, 10000.0);
  RopeTable table(Backend::host, 64, D, 10000.0);
  for (RopeStyle style : {RopeStyle::neox, RopeStyle::gptj})
    for (bool exact : {false, true}) {
      const AngleSource angles = exact ? AngleSource(freqs.view()) : AngleSource(table.view());
      std::vector<float> x(n), w(n), g(n);
      for (auto& v : x) v = float(u(rng));
      for (auto& v : w) v = float(u(rng));
      auto forward = [&](std::vector<float> in, bool inverse) {
        RopeOptions opt;
        opt.backend = Backend::host;
        opt.style = style;
        opt.inverse = inverse;
        apply_rope(TensorView::bshd(in.data(), DType::f32, B, S, H, D), nullptr, Positions::contiguous(5), angles, opt);
        return in;
      };
      g = forward(w, true);  // the gradient of L
      auto loss = [&](const std::vector<float>& in) {
        auto y = forward(in, false);
        double l = 0;
        for (int64_t i = 0; i < n; ++i) l += double(w[size_t(i)]) * y[size_t(i)];
        return l;
      };
      for (int trial = 0; trial < 4; ++trial) {
        std::vector<float> v(n), xp(n), xm(n);
        const float h = 0.25f;  // L is linear: a large step adds no truncation error, only f32 rounding
        for (auto& e : v) e = float(u(rng));
        for (int64_t i = 0; i < n; ++i) xp[size_t(i)] = x[size_t(i)] + h * v[size_t(i)], xm[size_t(i)] = x[size_t(i)] - h * v[size_t(i)];
        const double fd = (loss(xp) - loss(xm)) / (2.0 * h);
        double analytic = 0, mag = 0;
        for (int64_t i = 0; i < n; ++i) analytic += double(g[size_t(i)]) * v[size_t(i)], mag += std::fabs(g[size_t(i)] * v[size_t(i)]);
        INFO((style == RopeStyle::neox ? "neox" : "gptj") << (exact ? " exact" : " table") << " trial " << trial);
        CHECK(std::fabs(fd - analytic) <= 1e-5 * mag);
      }
    }
}

TEST_CASE("variants: bad input names the problem and writes nothing") {
  const int64_t D = 64;
  std::vector<float> q(2 * D, 0.5f), out(2 * D, 0.25f);
  const auto q0 = q, out0 = out;
  RopeTable table(Backend::host, 64, D, 10000.0);
  auto freqs = FrequencyTable::from_theta(Backend::host, D, 10000.0);
  std::vector<int32_t> ids3 = {1, 2, 3, 4, 5, 6};  // [3, 1, 2]
  std::vector<int32_t> ids3_far = {1, 2, 3, 4, 5, 99};
  const TensorView qv = TensorView::bshd(q.data(), DType::f32, 1, 2, 1, D);
  auto opts = [] {
    RopeOptions o;
    o.backend = Backend::host;
    return o;
  };
  auto expect = [&](const RopeOptions& o, const Positions& p, const AngleSource& a, std::initializer_list<std::string> words) {
    check_error([&] { apply_rope(qv, nullptr, p, a, o); }, ErrorKind::invalid_argument, words);
    CHECK(q == q0);
    CHECK(out == out0);
  };
  auto o = opts();
  o.rotary_offset = 64;
  expect(o, Positions::contiguous(0), table.view(), {"rotary_offset 64"});
  o = opts();
  o.rotary_offset = -2;
  expect(o, Positions::contiguous(0), table.view(), {"rotary_offset -2"});
  o = opts();
  o.rotary_offset = 16;
  o.rotary_dim = 64;
  expect(o, Positions::contiguous(0), table.view(), {"rotary_dim 64 from rotary_offset 16", "head_dim 64"});
  o = opts();
  o.rotary_offset = 16;  // rotary_dim 0: the rest of the head, 48, which the 64-dim table does not fit
  expect(o, Positions::contiguous(0), table.view(), {"rotary_dim is 48"});
  o = opts();
  o.mrope_section = {8, 12, 12};
  expect(o, Positions::from_ids(ids3.data(), DType::i32), table.view(), {"Positions::multimodal"});
  o = opts();
  expect(o, Positions::multimodal(ids3.data(), DType::i32), table.view(), {"mrope_section"});
  o.mrope_section = {8, 12, 11};
  expect(o, Positions::multimodal(ids3.data(), DType::i32), table.view(), {"mrope_section", "31", "32"});
  o.mrope_section = {-1, 17, 16};
  expect(o, Positions::multimodal(ids3.data(), DType::i32), table.view(), {"mrope_section", "-1"});
  o = opts();
  o.mrope_interleaved = true;
  expect(o, Positions::contiguous(0), table.view(), {"mrope_interleaved"});
  o = opts();
  o.mrope_section = {8, 12, 12};
  expect(o, Positions::multimodal(ids3_far.data(), DType::i32), table.view(), {"id 99", "w of token 1"});
  expect(o, Positions::multimodal(nullptr, DType::i32), table.view(), {"null ids"});
  Frequencies no_inv = freqs.view(AngleMode::hf_compat);
  no_inv.inv_freq = nullptr;
  expect(opts(), Positions::contiguous(0), no_inv, {"hf_compat", "inv_freq"});
  Frequencies bad_mode = freqs.view();
  bad_mode.mode = AngleMode::table;
  expect(opts(), Positions::contiguous(0), bad_mode, {"mode"});
  check_error([&] { (void)freqs.view(AngleMode(7)); }, ErrorKind::invalid_argument, {"mode 7"});
  // Several frequency sets: each sequence's index must name one, and the index must be given.
  FrequencyTable two(Backend::host, {freqs.inv_freq(), freqs.inv_freq()}, {1.0, 2.0});
  Frequencies pick = two.view();
  expect(opts(), Positions::contiguous(0), pick, {"set_index"});
  std::vector<int32_t> index = {2};
  pick.set_index = index.data();
  expect(opts(), Positions::contiguous(0), pick, {"set_index[0] = 2", "[0, 2)"});
  check_error([&] { FrequencyTable(Backend::host, {freqs.inv_freq(), {1.0}}, {1.0, 1.0}); }, ErrorKind::invalid_argument,
              {"set 1 has 1"});
  check_error([&] { FrequencyTable(Backend::host, {freqs.inv_freq()}, {1.0, 1.0}); }, ErrorKind::invalid_argument,
              {"1 sets and 2 attention factors"});
  check_error([&] { (void)two.set(2); }, ErrorKind::invalid_argument, {"set 2 of 2"});
  // Outputs of two dtypes, and an output of an integer dtype.
  std::vector<uint16_t> out16(2 * D, 0);
  std::vector<float> k(2 * D, 0.5f), kout(2 * D, 0.25f);
  o = opts();
  o.q_out = TensorView::bshd(out.data(), DType::f32, 1, 2, 1, D);
  o.k_out = TensorView::bshd(out16.data(), DType::bf16, 1, 2, 1, D);
  const TensorView kv = TensorView::bshd(k.data(), DType::f32, 1, 2, 1, D);
  check_error([&] { apply_rope(qv, &kv, Positions::contiguous(0), table.view(), o); }, ErrorKind::invalid_argument,
              {"k_out", "bf16", "f32"});
  CHECK(out == out0);
  CHECK(std::all_of(out16.begin(), out16.end(), [](uint16_t v) { return v == 0; }));
  std::vector<int32_t> iout(2 * D, 3);
  o = opts();
  o.q_out = TensorView::bshd(iout.data(), DType::i32, 1, 2, 1, D);
  check_error([&] { apply_rope(qv, nullptr, Positions::contiguous(0), table.view(), o); }, ErrorKind::invalid_argument,
              {"q_out"});
  CHECK(std::all_of(iout.begin(), iout.end(), [](int32_t v) { return v == 3; }));
}

namespace {
// Random q and k of a model's shape, rotated on the host from its config and checked against the
// fp64 reference of the same frequencies.
void check_model(const std::string& config, const Positions& host_pos, int64_t seq, uint64_t seed) {
  const ModelRope m = rope_from_config(config);
  std::mt19937_64 rng(seed);
  HostTensor q(Layout::bshd, DType::bf16, 1, seq, m.q_heads, m.head_dim), k(Layout::bshd, DType::bf16, 1, seq, m.kv_heads, m.head_dim);
  q.fill_random(rng);
  k.fill_random(rng);
  RopeOptions opt = m.options();
  opt.backend = Backend::host;
  const RopeFrequencies f = m.frequencies(seq);
  const auto freqs = m.frequency_table(Backend::host, seq);
  const auto table = ReferenceTable::from_frequencies(f.inv_freq, f.attention_factor);
  const auto ref_q = reference_rope(q.view, host_pos, table, opt), ref_k = reference_rope(k.view, host_pos, table, opt);
  apply_rope(q.view, &k.view, host_pos, freqs.view(), opt);
  const auto cq = compare_to_reference(q.view, ref_q), ck = compare_to_reference(k.view, ref_k);
  CHECK_MESSAGE(cq.ok(), cq.first_mismatch);
  CHECK_MESSAGE(ck.ok(), ck.first_mismatch);
}
}  // namespace

TEST_CASE("variants: q and k of real models rotated from their config.json (DeepSeek-V3, Qwen3-VL, Llama 3.1, Phi-3)") {
  const int64_t S = 6;
  SUBCASE("DeepSeek-V3: YaRN with mscale, the last 64 of 192 dims, interleaved") {
    const std::string cfg = R"({"model_type":"deepseek_v3","hidden_size":7168,"num_attention_heads":8,
      "num_key_value_heads":8,"qk_nope_head_dim":128,"qk_rope_head_dim":64,"v_head_dim":128,
      "max_position_embeddings":163840,"rope_theta":10000,"rope_scaling":{"type":"yarn","factor":40,
      "original_max_position_embeddings":4096,"beta_fast":32,"beta_slow":1,"mscale":1.0,"mscale_all_dim":1.0}})";
    const auto m = rope_from_config(cfg);
    CHECK(m.rotary_offset == 128);
    CHECK(m.rotary_dim == 64);
    check_model(cfg, Positions::contiguous(100000), S, 1);
  }
  SUBCASE("Qwen3-VL: interleaved multimodal sections 24/20/20") {
    std::vector<int64_t> ids(3 * S);
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = int64_t(7 + 13 * i);
    check_model(R"({"model_type":"qwen3_vl","text_config":{"hidden_size":4096,"num_attention_heads":4,
      "num_key_value_heads":2,"head_dim":128,"rope_theta":5000000,"rope_scaling":{"mrope_interleaved":true,
      "mrope_section":[24,20,20],"rope_type":"default"}}})",
                Positions::multimodal(ids.data(), DType::i64), S, 2);
  }
  SUBCASE("Llama 3.1: llama3 scaling") {
    check_model(R"({"hidden_size":4096,"num_attention_heads":32,"num_key_value_heads":8,"max_position_embeddings":131072,
      "rope_theta":500000.0,"rope_scaling":{"factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,
      "original_max_position_embeddings":8192,"rope_type":"llama3"}})",
                Positions::contiguous(120000), S, 3);
  }
  SUBCASE("Phi-3: LongRoPE, a short and a long sequence in one varlen batch, each with its set") {
    std::string shorts, longs;
    for (int i = 0; i < 48; ++i) {
      shorts += fmt::format("{}{}", i ? "," : "", 1.0 + 0.05 * i);
      longs += fmt::format("{}{}", i ? "," : "", 4.0 + 0.2 * i);
    }
    const std::string cfg = fmt::format(
        R"({{"model_type":"phi3","hidden_size":3072,"num_attention_heads":32,"num_key_value_heads":32,
        "max_position_embeddings":131072,"original_max_position_embeddings":4096,"rope_theta":10000.0,
        "rope_scaling":{{"type":"longrope","short_factor":[{}],"long_factor":[{}]}}}})",
        shorts, longs);
    const ModelRope m = rope_from_config(cfg);
    CHECK(m.set_for(4096) == 0);
    CHECK(m.set_for(4097) == 1);
    // Two sequences: one ends at position 100 (short factors), one at 9000 (long factors).
    const std::vector<int32_t> cu = {0, 3, 6}, starts = {97, 8997};
    const std::vector<int32_t> index = {m.set_for(100), m.set_for(9000)};
    CHECK(index == std::vector<int32_t>{0, 1});
    std::mt19937_64 rng(4);
    HostTensor q(Layout::bshd, DType::bf16, 1, 6, 4, m.head_dim);
    q.fill_random(rng);
    const HostTensor q0 = q;
    const auto sets = m.frequency_sets(Backend::host);
    Frequencies f = sets.view();
    f.set_index = index.data();
    RopeOptions opt = m.options();
    opt.backend = Backend::host;
    apply_rope(q.view, nullptr, Positions::varlen(cu.data(), DType::i32, 2, starts.data()), f, opt);
    for (int s = 0; s < 2; ++s) {
      const RopeFrequencies fs = m.frequencies(s == 0 ? 100 : 9000);
      CHECK(fs.attention_factor == sets.attention_factors()[size_t(s)]);
      TensorView in = q0.view, out = q.view;
      in.seq = out.seq = 3;
      in.data = const_cast<uint8_t*>(q0.bytes.data()) + size_t(3 * s) * size_t(in.stride_seq) * 2;
      out.data = q.bytes.data() + size_t(3 * s) * size_t(out.stride_seq) * 2;
      const auto ref = reference_rope(in, Positions::contiguous(starts[size_t(s)]),
                                      ReferenceTable::from_frequencies(fs.inv_freq, fs.attention_factor), opt);
      const auto c = compare_to_reference(out, ref);
      INFO("sequence " << s);
      CHECK_MESSAGE(c.ok(), c.first_mismatch);
    }
  }
}
