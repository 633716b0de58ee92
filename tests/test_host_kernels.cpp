// Generated kernels on the host backend (LLVM ORC, the same IR as the GPU's) against the fp64
// reference: the core matrix, other configs, strided storage, the cache, and RoPE's properties.
#include <doctest/doctest.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <thread>

#include "ropejit/ropejit.hpp"
#include "support.hpp"

using namespace ropejit;
using namespace ropejit::test;

namespace {
void run_matrix(RopeStyle style, DType dtype) { check_matrix(style, dtype, Backend::host); }
}  // namespace

TEST_CASE("host matrix: neox f32") { run_matrix(RopeStyle::neox, DType::f32); }
TEST_CASE("host matrix: neox f16") { run_matrix(RopeStyle::neox, DType::f16); }
TEST_CASE("host matrix: neox bf16") { run_matrix(RopeStyle::neox, DType::bf16); }
TEST_CASE("host matrix: gptj f32") { run_matrix(RopeStyle::gptj, DType::f32); }
TEST_CASE("host matrix: gptj f16") { run_matrix(RopeStyle::gptj, DType::f16); }
TEST_CASE("host matrix: gptj bf16") { run_matrix(RopeStyle::gptj, DType::bf16); }

TEST_CASE("host: every thread count, vector width, unroll and tokens per program that fits") {
  uint64_t seed = 5000;
  for (RopeStyle style : {RopeStyle::neox, RopeStyle::gptj})
    for (int width : {1, 2, 4, 8})
      for (int threads : {16, 32, 64, 256})
        for (int unroll : {1, 3}) {
          const int tokens = (threads + unroll + width) % 3 == 0 ? 4 : (threads + width) % 3 == 1 ? 2 : 1;
          Case c;
          c.style = style;
          c.dtype = DType::bf16;
          c.head_dim = 96;
          c.rotary_dim = 64;  // 32 pairs
          c.q_heads = 12;
          c.k_heads = 3;
          c.in_place = (threads / 16 + width) % 2 == 0;
          c.vector_width = width;
          c.threads = threads;
          c.unroll = unroll;
          c.streaming = width == 8 && unroll == 3 ? 1 : -1;
          c.tokens = tokens;
          if (threads < 32 / width) continue;  // fewer threads than chunks: rejected by design
          check_case(c, Backend::host, seed++);
        }
}

TEST_CASE("host: odd head counts and head_dims, padded strides, large head_dim") {
  uint64_t seed = 7000;
  for (DType dt : {DType::f32, DType::bf16, DType::f16})
    for (auto dims : {std::pair{512, 512}, std::pair{512, 64}, std::pair{6, 2}, std::pair{80, 40}, std::pair{120, 72}})
      for (bool in_place : {true, false}) {
        Case c;
        c.dtype = dt;
        c.head_dim = dims.first;
        c.rotary_dim = dims.second;
        c.q_heads = 7;
        c.k_heads = 3;
        c.in_place = in_place;
        c.layout = Layout::padded;
        c.pos = Pos::ids64;
        c.style = seed % 2 ? RopeStyle::gptj : RopeStyle::neox;
        c.batch = 3;
        c.seq = 2;
        check_case(c, Backend::host, seed++);
      }
}

TEST_CASE("host: the second call with the same spec does no code generation") {
  Case c;
  c.head_dim = 40;  // a spec no other test uses
  c.rotary_dim = 40;
  c.q_heads = 5;
  c.k_heads = 5;
  auto before = stats();
  check_case(c, Backend::host, 1);
  auto mid = stats();
  CHECK(mid.kernels_generated == before.kernels_generated + 1);
  check_case(c, Backend::host, 2);
  auto after = stats();
  CHECK(after.kernels_generated == mid.kernels_generated);
  CHECK(after.memory_hits == mid.memory_hits + 1);
}

TEST_CASE("host: threads racing on one new spec generate it once, and all get right results") {
  Case c;
  c.head_dim = 24;  // a spec no other test uses
  c.rotary_dim = 24;
  c.q_heads = 3;
  c.k_heads = 1;
  c.dtype = DType::f16;
  auto before = stats();
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      auto r = run_case(c, Backend::host, 100 + uint64_t(t));
      if (!r.q.ok() || !r.k.ok() || !r.gaps_untouched) failures++;
    });
  for (auto& t : threads) t.join();
  CHECK(failures.load() == 0);
  CHECK(stats().kernels_generated == before.kernels_generated + 1);
}

TEST_CASE("host kernels: norms preserved, q.k depends only on the position difference") {
  const int64_t D = 128;
  std::mt19937_64 rng(11);
  HostTensor q(Layout::bshd, DType::f32, 1, 1, 1, D), k(Layout::bshd, DType::f32, 1, 1, 1, D);
  q.fill_random(rng);
  k.fill_random(rng);
  RopeTable table(Backend::host, 20000, D, 500000.0, DType::f32);
  for (RopeStyle style : {RopeStyle::neox, RopeStyle::gptj}) {
    auto rotated = [&](const HostTensor& x, int64_t pos) {
      HostTensor out = x;
      RopeOptions opt;
      opt.backend = Backend::host;
      opt.style = style;
      apply_rope(out.view, nullptr, Positions::contiguous(pos), table.view(), opt);
      std::vector<double> v(D);
      for (int64_t i = 0; i < D; ++i) v[size_t(i)] = load_as_double(DType::f32, out.view.data, i);
      return v;
    };
    auto dotv = [](const std::vector<double>& a, const std::vector<double>& b) {
      double s = 0;
      for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
      return s;
    };
    std::vector<double> q0 = rotated(q, 0), k0 = rotated(k, 0);
    for (int64_t p : {1, 999, 19999}) {
      auto qp = rotated(q, p);
      CHECK(std::sqrt(dotv(qp, qp)) == doctest::Approx(std::sqrt(dotv(q0, q0))).epsilon(1e-6));
    }
    double base = dotv(rotated(q, 50), rotated(k, 20));
    double scale = std::sqrt(dotv(q0, q0) * dotv(k0, k0));
    for (int64_t shift : {1, 1000, 19000}) {
      double shifted = dotv(rotated(q, 50 + shift), rotated(k, 20 + shift));
      CHECK(std::fabs(shifted - base) <= 2e-6 * scale);
    }
  }
}

TEST_CASE("host kernels: warm_up makes the kernel a call needs, checks like the call, and runs nothing") {
  HostTensor q(Layout::bshd, DType::bf16, 2, 3, 5, 88), k(Layout::bshd, DType::bf16, 2, 3, 1, 88);
  std::mt19937_64 rng(77);
  q.fill_random(rng), k.fill_random(rng);
  const HostTensor q0 = q, k0 = k;
  RopeTable table(Backend::host, 64, 88);
  std::vector<float> w(88, 1.25f);
  const QkNorm norm{w.data(), w.data()};
  RopeOptions opt;
  opt.backend = Backend::host;
  const auto s0 = stats();
  warm_up(q.view, &k.view, Positions::contiguous(3), table.view(), opt);
  warm_up(q.view, &k.view, Positions::contiguous(3), table.view(), norm, opt);
  CHECK(stats().kernels_generated == s0.kernels_generated + 2);
  CHECK(q.bytes == q0.bytes);  // nothing ran
  CHECK(k.bytes == k0.bytes);
  apply_rope(q.view, &k.view, Positions::contiguous(3), table.view(), opt);
  apply_qk_norm_rope(q.view, &k.view, Positions::contiguous(3), table.view(), norm, opt);
  CHECK(stats().kernels_generated == s0.kernels_generated + 2);  // the calls found them
  CHECK(q.bytes != q0.bytes);
  // Bad arguments are refused as the call would refuse them.
  CHECK_THROWS_WITH_AS(warm_up(q.view, &k.view, Positions::contiguous(63), table.view(), opt),
                       doctest::Contains("table"), Error);
  CHECK_THROWS_AS(warm_up(q.view, &k.view, Positions::contiguous(0), table.view(), QkNorm{}, opt), Error);
}

TEST_CASE("host: the inverse rotation (RoPE's backward) against fp64, every style, dtype and layout") {
  uint64_t seed = 9100;
  for (RopeStyle style : {RopeStyle::neox, RopeStyle::gptj})
    for (DType dt : {DType::f32, DType::f16, DType::bf16})
      for (bool in_place : {true, false}) {
        Case c;
        c.style = style;
        c.dtype = dt;
        c.head_dim = 96;
        c.rotary_dim = in_place ? 96 : 64;
        c.q_heads = 5;
        c.k_heads = in_place ? 2 : 0;
        c.in_place = in_place;
        c.layout = in_place ? Layout::sbhd : Layout::padded;
        c.pos = in_place ? Pos::offset : Pos::ids64;
        c.inverse = true;
        check_case(c, Backend::host, seed++);
      }
}

TEST_CASE("host: inverse undoes the rotation, is a kernel of its own, and the fused op refuses it") {
  const int64_t D = 64;
  std::mt19937_64 rng(12);
  HostTensor x(Layout::bshd, DType::f32, 2, 7, 3, D);
  x.fill_random(rng);
  const HostTensor x0 = x;
  RopeTable table(Backend::host, 100000, D, 10000.0, DType::f32);
  RopeOptions opt;
  opt.backend = Backend::host;
  const auto pos = Positions::contiguous(99990);
  const auto fwd = describe_kernel(x.view, nullptr, pos, table.view(), opt);
  apply_rope(x.view, nullptr, pos, table.view(), opt);
  CHECK(x.bytes != x0.bytes);
  opt.inverse = true;
  const auto inv = describe_kernel(x.view, nullptr, pos, table.view(), opt);
  CHECK(inv.spec_key != fwd.spec_key);
  CHECK(inv.spec_key.find("inverse") != std::string::npos);
  apply_rope(x.view, nullptr, pos, table.view(), opt);
  // R(-a) R(a) x = x: two fp32 rotations, each within 2^-22 of |x| per element (cos^2 + sin^2 = 1 to
  // the table's rounding).
  double worst = 0;
  for (int64_t i = 0; i < x.view.tokens() * 3 * D; ++i) {
    const double a = load_as_double(DType::f32, x.view.data, i), b = load_as_double(DType::f32, x0.view.data, i);
    worst = std::max(worst, std::fabs(a - b));
  }
  CHECK(worst > 0);  // real arithmetic happened
  CHECK(worst <= 2 * 2.0 * 0x1p-22);
  std::vector<float> w(D, 1.0f);
  const QkNorm norm{w.data(), w.data()};
  CHECK_THROWS_WITH_AS(apply_qk_norm_rope(x.view, nullptr, pos, table.view(), norm, opt),
                       doctest::Contains("inverse"), Error);
}

TEST_CASE("host: in-kernel exact angles against exact fp64 angles: positions 0 to 2^31 - 1, theta 1e4 to 1e7") {
  uint64_t seed = 9300;
  double worst = 0;
  for (int64_t base : {int64_t(0), (int64_t(1) << 24) + 1, (int64_t(1) << 31) - 400})
    for (double theta : {1e4, 5e5, 1e7})
      for (RopeStyle style : {RopeStyle::neox, RopeStyle::gptj}) {
        Case c;
        c.exact_angles = true;
        c.position_base = base;
        c.theta = theta;
        c.style = style;
        c.dtype = seed % 3 == 0 ? DType::f32 : seed % 3 == 1 ? DType::bf16 : DType::f16;
        c.pos = seed % 2 ? Pos::ids64 : Pos::offset;
        c.in_place = seed % 4 != 1;
        c.rotary_dim = seed % 5 == 0 ? 64 : 128;
        c.inverse = seed % 7 == 3;
        c.seq = 9;
        INFO(c.describe());
        const auto r = run_case(c, Backend::host, seed++);
        CHECK(r.q.ok());
        CHECK(r.k.ok());
        CHECK(r.gaps_untouched);
        worst = std::max({worst, r.q.max_error_in_tolerances, r.k.max_error_in_tolerances});
      }
  MESSAGE("exact angles: worst error " << worst << " of the tolerance");
}

TEST_CASE("host: exact angles at position 0 are the identity, and FrequencyTable's steps are the phase per position") {
  auto f = FrequencyTable::from_theta(Backend::host, 128, 10000.0);
  REQUIRE(f.host_steps().size() == 64);
  // Each step is inv_freq / 2pi of a turn, to within a unit of 2^-64.
  for (size_t i = 0; i < 64; ++i) {
    const long double want = (long double)f.inv_freq()[i] / (2.0L * 3.14159265358979323846264338327950288L);
    const long double got = std::ldexp((long double)f.host_steps()[i], -64);
    CHECK(std::fabs(double((got - want) * std::ldexp(1.0L, 64))) <= 1.0);
  }
  // Position 0: cos 1 and sin 0 exactly, so the output equals the input bit for bit.
  std::mt19937_64 rng(3);
  HostTensor x(Layout::bshd, DType::bf16, 1, 1, 4, 128);
  x.fill_random(rng);
  const HostTensor x0 = x;
  RopeOptions opt;
  opt.backend = Backend::host;
  apply_rope(x.view, nullptr, Positions::contiguous(0), f.view(), opt);
  CHECK(x.bytes == x0.bytes);
  // Frequencies are checked like tables.
  Frequencies bad = f.view();
  bad.rotary_dim = 64;
  CHECK_THROWS_WITH_AS(apply_rope(x.view, nullptr, Positions::contiguous(0), bad, opt), doctest::Contains("frequencies"), Error);
  bad = f.view();
  bad.attention_factor = std::nanf("");
  CHECK_THROWS_WITH_AS(apply_rope(x.view, nullptr, Positions::contiguous(0), bad, opt), doctest::Contains("attention_factor"), Error);
  bad = f.view();
  CHECK_THROWS_WITH_AS(apply_rope(x.view, nullptr, Positions::contiguous(bad.max_position), bad, opt),
                       doctest::Contains("frequencies' max_position"), Error);
  CHECK(x.bytes == x0.bytes);
  CHECK_THROWS_AS(FrequencyTable(Backend::host, {1.0, -2.0}), Error);
  CHECK_THROWS_AS(FrequencyTable(Backend::host, {}), Error);
}

TEST_CASE("host: fill_table makes cos/sin from frequencies; with an f32 table the table path equals exact angles bit for bit") {
  const auto f = FrequencyTable(Backend::host, FrequencyTable::from_theta(Backend::host, 96, 5e5).inv_freq(), 1.25);
  const int64_t n = 5000, P = 48;
  std::vector<float> cos(size_t(n * P) + 8), sin(size_t(n * P) + 8);
  std::vector<uint16_t> cos16(size_t(n * P)), sin16(size_t(n * P));
  std::memset(cos.data(), 0xff, cos.size() * 4), std::memset(sin.data(), 0xff, sin.size() * 4);
  const CosSinTable t = fill_table(f.view(), cos.data(), sin.data(), DType::f32, n, Backend::host);
  fill_table(f.view(), cos16.data(), sin16.data(), DType::bf16, n, Backend::host);
  CHECK(std::isnan(cos[size_t(n * P)]));  // nothing past the table
  double worst = 0;
  for (int64_t p = 0; p < n; ++p)
    for (int64_t i = 0; i < P; ++i) {
      const long double a = (long double)p * (long double)f.inv_freq()[size_t(i)];
      const size_t at = size_t(p * P + i);
      worst = std::max({worst, double(std::fabs(cos[at] - 1.25L * std::cos(a))), double(std::fabs(sin[at] - 1.25L * std::sin(a)))});
      CHECK(cos16[at] == float_to_bf16(cos[at]));  // bf16: the f32 values rounded once
    }
  MESSAGE("fill_table: worst |error| " << worst << " (factor 1.25)");
  CHECK(worst <= 1.25 * 1.2e-7 + 0x1p-24 * 1.25);
  // The same rotation through the table and through in-kernel angles: the same bits.
  std::mt19937_64 rng(8);
  HostTensor a(Layout::bshd, DType::bf16, 2, 9, 3, 96);
  a.fill_random(rng);
  HostTensor b = a;
  RopeOptions opt;
  opt.backend = Backend::host;
  apply_rope(a.view, nullptr, Positions::contiguous(4000), t, opt);
  apply_rope(b.view, nullptr, Positions::contiguous(4000), f.view(), opt);
  CHECK(a.bytes == b.bytes);
  CHECK_THROWS_WITH_AS(fill_table(f.view(), cos.data(), cos.data() + 8, DType::f32, n, Backend::host),
                       doctest::Contains("overlap"), Error);
  CHECK_THROWS_WITH_AS(fill_table(f.view(), cos.data(), sin.data(), DType::f16, n, Backend::host),
                       doctest::Contains("dtype"), Error);
}

TEST_CASE("host: varlen batches (cu_seqlens, empty sequences, per-sequence starts or one offset) against fp64") {
  uint64_t seed = 9700;
  for (int seqs : {1, 3, 17, 40})
    for (Pos pos : {Pos::varlen32, Pos::varlen64})
      for (bool exact : {false, true}) {
        Case c;
        c.pos = pos;
        c.batch = seqs;  // sequences, packed as [1, seqs x seq]
        c.seq = seqs > 20 ? 5 : 11;
        c.q_heads = 6;
        c.k_heads = 2;
        c.exact_angles = exact;
        c.style = seed % 2 ? RopeStyle::gptj : RopeStyle::neox;
        c.dtype = seed % 3 == 0 ? DType::f32 : DType::bf16;
        c.in_place = seed % 4 != 1;
        c.layout = seed % 5 == 2 ? Layout::padded : Layout::bshd;
        c.inverse = seed % 7 == 4;
        c.tokens = seed % 3 == 0 ? 4 : seed % 3 == 1 ? 2 : 0;  // tokens of several sequences in one program
        check_case(c, Backend::host, seed++);
      }
}
