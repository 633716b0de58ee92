// The fp64 reference against hand-computed cases and RoPE's algebra; the table's precision.
#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "ropejit/ropejit.hpp"
#include "support.hpp"

using namespace ropejit;
using namespace ropejit::test;

namespace {
double dot(const std::vector<double>& a, size_t ia, const std::vector<double>& b, size_t ib, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += a[ia + size_t(i)] * b[ib + size_t(i)];
  return s;
}
}  // namespace

TEST_CASE("reference: hand-computed rotation, both styles") {
  // One head of 4 elements, rotary_dim 4, position 1, theta 100: angles 1 and 0.1 rad.
  std::vector<float> x = {1.0f, 2.0f, 3.0f, 4.0f};
  auto view = TensorView::bshd(x.data(), DType::f32, 1, 1, 1, 4);
  auto table = ReferenceTable::exact(2, 4, 100.0);
  const double c0 = std::cos(1.0), s0 = std::sin(1.0), c1 = std::cos(0.1), s1 = std::sin(0.1);

  auto neox = reference_rope(view, Positions::contiguous(1), table, RopeStyle::neox, 4);
  // pairs (x0, x2) at angle 1 and (x1, x3) at angle 0.1
  CHECK(neox.value[0] == doctest::Approx(1 * c0 - 3 * s0).epsilon(1e-15));
  CHECK(neox.value[2] == doctest::Approx(3 * c0 + 1 * s0).epsilon(1e-15));
  CHECK(neox.value[1] == doctest::Approx(2 * c1 - 4 * s1).epsilon(1e-15));
  CHECK(neox.value[3] == doctest::Approx(4 * c1 + 2 * s1).epsilon(1e-15));

  auto gptj = reference_rope(view, Positions::contiguous(1), table, RopeStyle::gptj, 4);
  // pairs (x0, x1) at angle 1 and (x2, x3) at angle 0.1
  CHECK(gptj.value[0] == doctest::Approx(1 * c0 - 2 * s0).epsilon(1e-15));
  CHECK(gptj.value[1] == doctest::Approx(2 * c0 + 1 * s0).epsilon(1e-15));
  CHECK(gptj.value[2] == doctest::Approx(3 * c1 - 4 * s1).epsilon(1e-15));
  CHECK(gptj.value[3] == doctest::Approx(4 * c1 + 3 * s1).epsilon(1e-15));
}

TEST_CASE("reference: position 0 is the identity and the part past rotary_dim passes through") {
  std::vector<float> x = {1.5f, -2.0f, 0.25f, 7.0f, 9.0f, -3.0f};
  auto view = TensorView::bshd(x.data(), DType::f32, 1, 1, 1, 6);
  auto table = ReferenceTable::exact(4, 4, 10000.0);
  auto r = reference_rope(view, Positions::contiguous(0), table, RopeStyle::neox, 4);
  for (int i = 0; i < 6; ++i) CHECK(r.value[size_t(i)] == double(x[size_t(i)]));
  auto r3 = reference_rope(view, Positions::contiguous(3), table, RopeStyle::gptj, 4);
  CHECK(r3.value[4] == 9.0);
  CHECK(r3.value[5] == -3.0);
  CHECK(r3.scale[4] == 0.0);
  CHECK(r3.value[0] != doctest::Approx(1.5));
}

TEST_CASE("reference: norms are preserved and q.k depends only on the position difference") {
  std::mt19937_64 rng(7);
  for (RopeStyle style : {RopeStyle::neox, RopeStyle::gptj}) {
    const int64_t D = 128;
    HostTensor q(Layout::bshd, DType::f32, 1, 1, 1, D), k(Layout::bshd, DType::f32, 1, 1, 1, D);
    q.fill_random(rng);
    k.fill_random(rng);
    auto table = ReferenceTable::exact(5000, D, 500000.0);
    std::vector<double> q0(D), k0(D);
    for (int64_t i = 0; i < D; ++i) q0[size_t(i)] = load_as_double(DType::f32, q.view.data, i), k0[size_t(i)] = load_as_double(DType::f32, k.view.data, i);
    auto rq = [&](int64_t p) { return reference_rope(q.view, Positions::contiguous(p), table, style, D).value; };
    auto rk = [&](int64_t p) { return reference_rope(k.view, Positions::contiguous(p), table, style, D).value; };
    for (int64_t p : {1, 17, 4999}) CHECK(dot(rq(p), 0, rq(p), 0, D) == doctest::Approx(dot(q0, 0, q0, 0, D)).epsilon(1e-13));
    double base = dot(rq(10), 0, rk(3), 0, D);
    for (int64_t shift : {1, 100, 4000}) CHECK(dot(rq(10 + shift), 0, rk(3 + shift), 0, D) == doctest::Approx(base).epsilon(1e-11));
    CHECK(base != doctest::Approx(dot(rq(11), 0, rk(3), 0, D)).epsilon(1e-6));  // and it does depend on it
  }
}

TEST_CASE("table: cos/sin rounded once from fp64 angles, exact at long context") {
  const int64_t max_pos = 1 << 20;  // 1M positions: fp32 angle formation would lose ~0.03 rad here
  RopeTable t(Backend::host, max_pos, 8, 10000.0, DType::f32);
  auto exact = ReferenceTable::exact(1, 8, 10000.0);  // for the frequencies
  int64_t worst_pos = 0;
  double worst = 0;
  for (int64_t p : {int64_t(1), int64_t(4097), int64_t(131071), max_pos - 1})
    for (int64_t i = 0; i < 4; ++i) {
      double angle = double(p) * std::pow(10000.0, -2.0 * double(i) / 8.0);
      double c = load_as_double(DType::f32, t.view().cos, p * 4 + i);
      double s = load_as_double(DType::f32, t.view().sin, p * 4 + i);
      // Within half an f32 ulp of the true values: rounded once.
      CHECK(std::fabs(c - std::cos(angle)) <= std::ldexp(1.0, -25) * 1.0000001);
      CHECK(std::fabs(s - std::sin(angle)) <= std::ldexp(1.0, -25) * 1.0000001);
      double e = std::fabs(c - std::cos(angle));
      if (e > worst) worst = e, worst_pos = p;
    }
  MESSAGE("worst cos error " << worst << " at position " << worst_pos);
  CHECK(exact.cos[0] == 1.0);
}

TEST_CASE("host conversions round to nearest even") {
  CHECK(float_to_bf16(1.0f) == 0x3f80);
  CHECK(float_to_bf16(bf16_to_float(0x3f80) + std::ldexp(1.0f, -8)) == 0x3f80);  // tie to even (down)
  CHECK(float_to_bf16(bf16_to_float(0x3f81) + std::ldexp(1.0f, -8)) == 0x3f82);  // tie to even (up)
  CHECK(float_to_bf16(std::nanf("")) == 0x7fff);
  CHECK(float_to_f16(1.0f) == 0x3c00);
  CHECK(f16_to_float(0x3c01) == 1.0f + std::ldexp(1.0f, -10));
  uint16_t b = 0;
  store_from_double(DType::bf16, &b, 0, 1.0 + std::ldexp(1.0, -8) + std::ldexp(1.0, -40));  // just above a tie
  CHECK(b == 0x3f81);
}
