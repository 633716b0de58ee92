// The kernel language on the host backend (LLVM ORC on this CPU): elementwise arithmetic, exp, masked
// memory, program ids, casts and integer forms, reductions across a program's threads, and the errors
// of misuse. Every kernel is a ropejit::Kernel launched with host pointers. Inputs are random in
// [-2, 2) (never zero) unless a case needs otherwise; outputs are poisoned (every byte 0xff) before
// each launch. Results are checked against the same f32 operations on the host, bit for bit where
// IEEE fixes the result (+ - * /, fma, sqrt, abs, min, max, conversions), or against fp64 with a
// stated bound (exp, sums).
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "check_error.hpp"
#include "support.hpp"
#include "ropejit/ropejit.hpp"

using namespace ropejit;
using ropejit::test::check_error;
using ropejit::test::LaneGroup;
using ropejit::test::lane_groups;
using lang::Access;
using lang::Builder;
using lang::Elem;
using lang::Value;

namespace {

constexpr Backend kHost = Backend::host;

uint32_t bits_of(float f) { return std::bit_cast<uint32_t>(f); }

std::vector<float> random_floats(size_t n, uint64_t seed, double lo = -2.0, double hi = 2.0) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) {
    do x = float(u(rng));
    while (x == 0.0f);
  }
  return v;
}

template <typename T>
void poison(std::vector<T>& v) {
  std::memset(v.data(), 0xff, v.size() * sizeof(T));
}

template <typename T>
bool is_poison(const T& x) {
  unsigned char b[sizeof(T)];
  std::memcpy(b, &x, sizeof(T));
  return std::all_of(b, b + sizeof(T), [](unsigned char c) { return c == 0xff; });
}

// The global index of this thread's first element, for `width` elements per thread.
Value first_element(Builder& b, int width) { return (b.program_id() * b.threads() + b.thread_id()) * width; }

// (a + 0, a + 1, ..., a + width - 1) as an i64 vector, from a scalar i64.
Value iota_from(Builder& b, Value a, int width) {
  Value v = b.shuffle(b.i64(0), b.i64(1), {0, 1});
  for (int w = 2; w < width; w *= 2) {  // (0..w-1) joined with (w..2w-1)
    std::vector<int> both(static_cast<size_t>(2 * w));
    for (int i = 0; i < 2 * w; ++i) both[size_t(i)] = i;
    v = b.shuffle(v, v + double(w), both);
  }
  return b.splat(a, width) + v;
}

}  // namespace

// ---- Elementwise arithmetic ----

TEST_CASE("language: elementwise f32 arithmetic on width-4 vectors matches the host bit for bit") {
  constexpr int kOuts = 13;
  Signature sig{Arg::pointer("a", DType::f32, true), Arg::pointer("b", DType::f32, true),
                Arg::pointer("c", DType::f32, true),  Arg::pointer("y", DType::f32),
                Arg::pointer("flags", DType::i32),    Arg::float32("s"),
                Arg::int64("n")};
  Kernel k("lang_elementwise", sig, "v1", 32, [](Builder& b) {
    Value i = first_element(b, 4);
    Value n = b.param("n");
    Value ok = i < n;
    Value x = b.load(b.param("a") + i, 4, {.mask = ok});
    Value y = b.load(b.param("b") + i, 4, {.mask = ok});
    Value z = b.load(b.param("c") + i, 4, {.mask = ok});
    Value outs[kOuts] = {x + y,
                         x - y,
                         x * y,
                         x / y,
                         b.fma(x, y, z),
                         b.sqrt(b.abs(x)),
                         b.abs(x),
                         b.min(x, y),
                         b.max(x, y),
                         b.select(x < y, x * 3.0, y - 1.0),
                         -x,
                         x * b.param("s"),  // a scalar parameter against a vector: splatted
                         2.0 / x};
    for (int o = 0; o < kOuts; ++o) b.store(b.param("y") + (i + n * double(o)), outs[o], {.mask = ok});
    Value flags = b.cast(x < y, Elem::i32) + b.cast(x <= y, Elem::i32) * 2.0 + b.cast(x > y, Elem::i32) * 4.0 +
                  b.cast(x >= y, Elem::i32) * 8.0 + b.cast(x == y, Elem::i32) * 16.0 +
                  b.cast(x != y, Elem::i32) * 32.0;
    b.store(b.param("flags") + i, flags, {.mask = ok});
  });

  const int64_t n = 4 * 32 * 3 - 4 * 5;  // the last program's last 5 threads are masked off
  auto a = random_floats(size_t(n), 1), bv = random_floats(size_t(n), 2), c = random_floats(size_t(n), 3);
  for (int64_t i = 0; i < n; i += 7) bv[size_t(i)] = a[size_t(i)];    // equal: == and <= >= hold
  for (int64_t i = 3; i < n; i += 11) bv[size_t(i)] = -a[size_t(i)];  // opposite signs
  const float s = float(0.3);
  std::vector<float> y(static_cast<size_t>(kOuts * n + 16));
  std::vector<int32_t> flags(static_cast<size_t>(n + 16));
  poison(y);
  poison(flags);
  ArgPack args(k.signature());
  args.set("a", a.data()).set("b", bv.data()).set("c", c.data()).set("y", y.data()).set("flags", flags.data());
  args.set("s", 0.3).set("n", n);
  k.launch(kHost, Grid{3}, args);

  const std::string names[kOuts] = {"+", "-", "*", "/", "fma", "sqrt(abs)", "abs", "min", "max", "select", "neg", "* s", "2 / x"};
  int64_t wrong[kOuts] = {};
  int64_t wrong_flags = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float x = a[size_t(i)], v = bv[size_t(i)], z = c[size_t(i)];
    float x3 = x * 3.0f, v1 = v - 1.0f;
    const float expect[kOuts] = {x + v,        x - v,        x * v,          x / v,  std::fma(x, v, z),
                                 std::sqrt(std::fabs(x)),    std::fabs(x),   std::fmin(x, v),
                                 std::fmax(x, v),            x < v ? x3 : v1, -x,    x * s,
                                 2.0f / x};
    for (int o = 0; o < kOuts; ++o)
      if (bits_of(y[size_t(o * n + i)]) != bits_of(expect[o]) && wrong[o]++ == 0)
          MESSAGE(fmt::format("{} at {}: got {:a}, expected {:a} (x={:a}, y={:a}, z={:a})", names[o], i,
                              y[size_t(o * n + i)], expect[o], x, v, z));
    int32_t f = (x < v) + 2 * (x <= v) + 4 * (x > v) + 8 * (x >= v) + 16 * (x == v) + 32 * (x != v);
    if (flags[size_t(i)] != f) ++wrong_flags;
  }
  for (int o = 0; o < kOuts; ++o) CHECK_MESSAGE(wrong[o] == 0, names[o] << ": " << wrong[o] << " of " << n << " differ");
  CHECK(wrong_flags == 0);
  // Past n (the masked-off threads' elements) nothing was written.
  bool tail_poisoned = true;
  for (size_t i = size_t(kOuts * n); i < y.size(); ++i) tail_poisoned &= is_poison(y[i]);
  for (size_t i = size_t(n); i < flags.size(); ++i) tail_poisoned &= is_poison(flags[i]);
  CHECK(tail_poisoned);
}

TEST_CASE("language: f16 and bf16 storage widens exactly and rounds once to nearest even") {
  Signature sig{Arg::pointer("h", DType::f16, true), Arg::pointer("bf", DType::bf16, true),
                Arg::pointer("h_out", DType::f16), Arg::pointer("bf_out", DType::bf16), Arg::pointer("f_out", DType::f32)};
  Kernel k("lang_half_storage", sig, "v1", 64, [](Builder& b) {
    Value i = first_element(b, 8);
    Value h = b.load(b.param("h") + i, 8);
    Value bf = b.load(b.param("bf") + i, 8);
    b.store(b.param("h_out") + i, h * 3.0);    // rounded once to f16
    b.store(b.param("bf_out") + i, bf * 3.0);  // rounded once to bf16
    b.store(b.param("f_out") + i, h + bf);     // exact widening, one f32 add
  });
  const size_t n = 8 * 64 * 2;
  auto src = random_floats(n, 4);
  std::vector<uint16_t> h(n), bf(n), h_out(n), bf_out(n);
  std::vector<float> f_out(n);
  for (size_t i = 0; i < n; ++i) h[i] = float_to_f16(src[i]), bf[i] = float_to_bf16(src[n - 1 - i]);
  poison(h_out), poison(bf_out), poison(f_out);
  ArgPack args(k.signature());
  args.set("h", h.data()).set("bf", bf.data()).set("h_out", h_out.data()).set("bf_out", bf_out.data());
  args.set("f_out", f_out.data());
  k.launch(kHost, Grid{2}, args);
  int64_t wrong = 0;
  for (size_t i = 0; i < n; ++i) {
    float hf = f16_to_float(h[i]), bff = bf16_to_float(bf[i]);
    wrong += h_out[i] != float_to_f16(hf * 3.0f);
    wrong += bf_out[i] != float_to_bf16(bff * 3.0f);
    wrong += bits_of(f_out[i]) != bits_of(hf + bff);
  }
  CHECK(wrong == 0);
}

// ---- sin and cos of a fixed-point phase ----

TEST_CASE("language: sincos_turns within 1.2e-7 of sin and cos in long double, every octant and its edges") {
  Signature sig{Arg::pointer("t", DType::i64, true), Arg::pointer("s", DType::f32), Arg::pointer("c", DType::f32),
                Arg::int64("n")};
  Kernel k("lang_sincos", sig, "v1", 64, [](Builder& b) {
    Value i = first_element(b, 2);
    Value ok = i < b.param("n");
    auto [s, c] = b.sincos_turns(b.load(b.param("t") + i, 2, {.mask = ok}));
    b.store(b.param("s") + i, s, {.mask = ok});
    b.store(b.param("c") + i, c, {.mask = ok});
  });
  std::vector<uint64_t> t;
  std::mt19937_64 rng(17);
  for (int i = 0; i < 200000; ++i) t.push_back(rng());
  for (uint64_t o = 0; o < 8; ++o)  // each octant's edges and its neighbours
    for (int64_t d : {-2, -1, 0, 1, 2}) t.push_back((o << 61) + uint64_t(d));
  // Positions times RoPE's fixed-point steps, the way the kernels form phases (theta 1e4, 128 dims).
  for (int64_t p : {int64_t(0), int64_t(1), int64_t(1) << 24 | 1, (int64_t(1) << 31) - 1})
    for (int i = 0; i < 64; ++i) {
      long double f = std::pow(10000.0L, -2.0L * i / 128.0L) / (2.0L * 3.14159265358979323846264338327950288L);
      t.push_back(uint64_t(p) * uint64_t(std::llroundl(std::ldexp(f, 63)) * 2));
    }
  if (t.size() % 2) t.push_back(0);
  std::vector<float> s(t.size() + 2), c(t.size() + 2);
  poison(s), poison(c);
  ArgPack args(k.signature());
  args.set("t", t.data()).set("s", s.data()).set("c", c.data()).set("n", int64_t(t.size()));
  k.launch(kHost, Grid{int64_t(t.size() + 127) / 128}, args);
  CHECK(is_poison(s[t.size()]));
  CHECK(is_poison(c[t.size()]));
  const long double two_pi = 2.0L * 3.14159265358979323846264338327950288L;
  double worst = 0;
  int64_t over = 0;
  for (size_t i = 0; i < t.size(); ++i) {
    const long double a = two_pi * std::ldexp((long double)t[i], -64);
    const double es = double(std::fabs((long double)s[i] - std::sin(a)));
    const double ec = double(std::fabs((long double)c[i] - std::cos(a)));
    const double e = std::max(es, ec);
    if (!(e <= 1.2e-7) && over++ == 0)
      MESSAGE(fmt::format("turns {:#x}: sin {} cos {}, errors {:.3g} {:.3g}", t[i], s[i], c[i], es, ec));
    if (!(e <= worst)) worst = e;
  }
  MESSAGE("sincos_turns: worst absolute error " << worst << " over " << t.size() << " phases");
  CHECK(over == 0);
  CHECK(c[200000 + 2] == 1.0f);  // octant 0's edge: phase 0 is exactly cos 1, sin 0
  CHECK(s[200000 + 2] == 0.0f);
}

TEST_CASE("language: sincos of f32 radians within 1.2e-7 of the exact sin and cos of that f32, at any magnitude") {
  Signature sig{Arg::pointer("a", DType::f32, true), Arg::pointer("s", DType::f32), Arg::pointer("c", DType::f32),
                Arg::int64("n")};
  Kernel k("lang_sincos_radians", sig, "v1", 64, [](Builder& b) {
    Value i = first_element(b, 4);
    Value ok = i < b.param("n");
    auto [s, c] = b.sincos(b.load(b.param("a") + i, 4, {.mask = ok}));
    b.store(b.param("s") + i, s, {.mask = ok});
    b.store(b.param("c") + i, c, {.mask = ok});
  });
  std::vector<float> a = {0.0f, -0.0f, 1e-45f, 1e-38f, 1e-20f, 1e-7f, 0.5f, 1.0f, 3.14159265f, 6.28318531f,
                          -1.0f, 1e5f, 1e6f, 16777217.0f, 2147483647.0f, 1e10f, 3.0e38f, -3.0e38f};
  std::mt19937_64 rng(23);
  // Uniform exponents from 2^-30 to 2^40, both signs; and HF's angles f32(p) x f32(inv_freq).
  for (int i = 0; i < 100000; ++i) {
    float v = std::ldexp(std::uniform_real_distribution<float>(1.0f, 2.0f)(rng), int(rng() % 71) - 30);
    a.push_back(rng() % 2 ? -v : v);
  }
  for (int64_t p : {int64_t(1), int64_t(4097), (int64_t(1) << 24) + 1, (int64_t(1) << 31) - 1})
    for (int i = 0; i < 64; ++i) a.push_back(float(p) * float(std::pow(1e4, -2.0 * i / 128.0)));
  while (a.size() % 4) a.push_back(1.0f);
  std::vector<float> s(a.size() + 4), c(a.size() + 4);
  poison(s), poison(c);
  ArgPack args(k.signature());
  args.set("a", a.data()).set("s", s.data()).set("c", c.data()).set("n", int64_t(a.size()));
  k.launch(kHost, Grid{int64_t(a.size() + 255) / 256}, args);
  CHECK(is_poison(s[a.size()]));
  double worst = 0;
  int64_t over = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const long double x = a[i];  // the f32 angle, exactly; glibc's sinl/cosl reduce it correctly
    const double e = double(std::max(std::fabs((long double)s[i] - std::sin(x)), std::fabs((long double)c[i] - std::cos(x))));
    if (!(e <= 1.2e-7) && over++ == 0) MESSAGE(fmt::format("angle {:.9g}: sin {} cos {}, error {:.3g}", a[i], s[i], c[i], e));
    if (!(e <= worst)) worst = e;
  }
  MESSAGE("sincos(radians): worst absolute error " << worst << " over " << a.size() << " angles");
  CHECK(over == 0);
  CHECK(c[0] == 1.0f);
  CHECK(s[0] == 0.0f);
}

// ---- exp ----

TEST_CASE("language: exp within 4 ulps of f32 over [-80, 80]; underflow to 0 or a denormal, overflow to inf") {
  Signature sig{Arg::pointer("x", DType::f32, true), Arg::pointer("y", DType::f32), Arg::int64("n")};
  Kernel k("lang_exp", sig, "v1", 64, [](Builder& b) {
    Value i = first_element(b, 4);
    Value ok = i < b.param("n");
    b.store(b.param("y") + i, b.exp(b.load(b.param("x") + i, 4, {.mask = ok})), {.mask = ok});
  });
  auto run = [&](std::vector<float> x) {  // padded to whole vectors of 4 (the mask covers a vector)
    const size_t used = x.size();
    x.resize((used + 3) / 4 * 4, 1.0f);
    std::vector<float> y(x.size() + 4);
    poison(y);
    ArgPack args(k.signature());
    args.set("x", x.data()).set("y", y.data()).set("n", int64_t(x.size()));
    k.launch(kHost, Grid{int64_t(x.size() + 255) / 256}, args);
    for (size_t i = x.size(); i < y.size(); ++i) CHECK(is_poison(y[i]));
    y.resize(used);
    return y;
  };

  // A sweep of [-80, 80] plus random points; every result is a normal f32 there.
  // Bound: |exp(x) - e| <= 4 ulp(e), e = std::exp(double(x)), ulp(e) = 2^(floor(log2 e) - 23).
  std::vector<float> x;
  for (int i = 0; i <= 40000; ++i) x.push_back(float(-80.0 + 160.0 * i / 40000.0));
  auto r = random_floats(20000, 5, -80.0, 80.0);
  x.insert(x.end(), r.begin(), r.end());
  for (float v : {0.0f, -0.0f, 1e-8f, -1e-8f, 0.5f, 1.0f, -1.0f, 0.693147182f, 88.0f, 88.7f, -87.0f})
    x.push_back(v);
  auto y = run(x);
  double worst_ulps = 0;
  int64_t over = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    double e = std::exp(double(x[i]));
    double ulp = std::ldexp(1.0, std::ilogb(e) - 23);
    double ulps = std::fabs(double(y[i]) - e) / ulp;
    if (!(ulps <= 4.0)) {
      if (over++ == 0) MESSAGE(fmt::format("exp({:a}) = {:a}, expected {:a}: {} ulps", x[i], y[i], e, ulps));
    }
    if (ulps > worst_ulps || std::isnan(ulps)) worst_ulps = ulps;
  }
  MESSAGE("exp: worst error " << worst_ulps << " ulps of f32 over " << x.size() << " points");
  CHECK(over == 0);
  CHECK(y[x.size() - 11] == 1.0f);  // exp(0) is exactly 1
  CHECK(y[x.size() - 10] == 1.0f);  // exp(-0)

  // Underflow: 0 or a denormal, never negative or NaN, within a denormal step (plus 4 ulps relative).
  std::vector<float> lo = {-88.0f, -90.0f, -95.0f, -100.0f, -103.0f, -103.9f, -104.0f, -105.0f, -150.0f, -1000.0f,
                           -std::numeric_limits<float>::infinity()};
  auto ylo = run(lo);
  for (size_t i = 0; i < lo.size(); ++i) {
    INFO("exp(" << lo[i] << ") = " << ylo[i]);
    double e = std::exp(double(lo[i]));
    CHECK(ylo[i] >= 0.0f);
    CHECK(ylo[i] < std::numeric_limits<float>::min());
    CHECK(std::fabs(double(ylo[i]) - e) <= 0x1p-149 + 4 * 0x1p-23 * e);
  }
  CHECK(ylo[0] > 0.0f);  // exp(-88) = 6.05e-39: a denormal, not flushed to zero
  CHECK(ylo[1] > 0.0f);  // exp(-90) = 8.2e-40

  // Overflow: inf.
  std::vector<float> hi = {88.8f, 89.0f, 100.0f, 1000.0f, std::numeric_limits<float>::infinity()};
  auto yhi = run(hi);
  for (size_t i = 0; i < hi.size(); ++i) {
    INFO("exp(" << hi[i] << ") = " << yhi[i]);
    CHECK(yhi[i] == std::numeric_limits<float>::infinity());
  }
}

TEST_CASE("language: exp of NaN is NaN") {
  Signature sig{Arg::pointer("x", DType::f32, true), Arg::pointer("y", DType::f32)};
  Kernel k("lang_exp_nan", sig, "v1", 1, [](Builder& b) {
    b.store(b.param("y"), b.exp(b.load(b.param("x"), 4)));
  });
  std::vector<float> x = {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::quiet_NaN(), 1.0f,
                          std::numeric_limits<float>::quiet_NaN()};
  std::vector<float> y(4);
  poison(y);
  ArgPack args(k.signature());
  args.set("x", x.data()).set("y", y.data());
  k.launch(kHost, Grid{1}, args);
  CHECK_MESSAGE(std::isnan(y[0]), "exp(NaN) = " << y[0]);
  CHECK_MESSAGE(std::isnan(y[1]), "exp(-NaN) = " << y[1]);
  CHECK(std::fabs(double(y[2]) - std::exp(1.0)) <= 4 * 0x1p-23 * 2);
  CHECK_MESSAGE(std::isnan(y[3]), "exp(NaN) = " << y[3]);
}

// ---- Masked memory ----

TEST_CASE("language: masked loads give `other`, masked stores leave memory alone (scalar and per-element masks)") {
  Signature sig{Arg::pointer("x", DType::f32, true), Arg::pointer("m", DType::i32, true),
                Arg::pointer("loaded", DType::f32), Arg::pointer("zeros", DType::f32),
                Arg::pointer("stored", DType::f32), Arg::int64("n")};
  // Scalar mask: thread t's whole vector of 4 is on when t % 3 != 0 (and it lies inside n).
  Kernel scalar_mask("lang_mask_scalar", sig, "v1", 32, [](Builder& b) {
    Value i = first_element(b, 4);
    Value t = b.program_id() * b.threads() + b.thread_id();
    Value on = (t % 3 != 0) & (i < b.param("n"));
    Value v = b.load(b.param("x") + i, 4, {.mask = on, .other = b.f32(-7.0f)});
    Value z = b.load(b.param("x") + i, 4, {.mask = on});  // other: 0
    b.store(b.param("loaded") + i, v);
    b.store(b.param("zeros") + i, z);
    b.store(b.param("stored") + i, v * 2.0, {.mask = on});
  });
  // Per-element mask: element e is on where m[i + e] != 0 and i + e < n (a ragged tail).
  Kernel vector_mask("lang_mask_vector", sig, "v1", 32, [](Builder& b) {
    Value i = first_element(b, 4);
    Value inside = iota_from(b, i, 4) < b.param("n");
    Value m = b.load(b.param("m") + i, 4, {.mask = inside});  // masked-off: 0
    Value on = (m != 0.0) & inside;
    Value v = b.load(b.param("x") + i, 4, {.mask = on, .other = b.splat(b.f32(-7.0f), 4)});
    Value z = b.load(b.param("x") + i, 4, {.mask = on});
    b.store(b.param("loaded") + i, v);
    b.store(b.param("zeros") + i, z);
    b.store(b.param("stored") + i, v * 2.0, {.mask = on});
  });

  const int64_t threads = 32 * 2, cap = 4 * threads;
  auto x = random_floats(size_t(cap), 6);
  std::vector<int32_t> m(static_cast<size_t>(cap));
  std::mt19937_64 rng(7);
  for (auto& e : m) e = int32_t(rng() % 3) - 1;  // -1, 0, 1: on where non-zero

  // Runs one of the kernels and counts wrong elements against `on(i)`: loaded is x or -7 (other),
  // zeros is x or 0, stored is 2x or untouched poison.
  auto check = [&](Kernel& k, int64_t n, const std::function<bool(int64_t)>& on_at) {
    std::vector<float> loaded(static_cast<size_t>(cap)), zeros(static_cast<size_t>(cap)), stored(static_cast<size_t>(cap));
    poison(loaded), poison(zeros), poison(stored);
    ArgPack args(k.signature());
    args.set("x", x.data()).set("m", m.data()).set("loaded", loaded.data()).set("zeros", zeros.data());
    args.set("stored", stored.data()).set("n", n);
    k.launch(kHost, Grid{2}, args);
    int64_t wrong = 0, on_count = 0;
    for (int64_t i = 0; i < cap; ++i) {
      const bool on = on_at(i);
      on_count += on;
      const float xi = x[size_t(i)];
      wrong += bits_of(loaded[size_t(i)]) != bits_of(on ? xi : -7.0f);
      wrong += bits_of(zeros[size_t(i)]) != bits_of(on ? xi : 0.0f);
      wrong += on ? bits_of(stored[size_t(i)]) != bits_of(xi * 2.0f) : !is_poison(stored[size_t(i)]);
    }
    CHECK(on_count > 0);
    CHECK(on_count < cap);
    CHECK(wrong == 0);
  };
  SUBCASE("scalar mask") { check(scalar_mask, cap, [](int64_t i) { return (i / 4) % 3 != 0; }); }
  SUBCASE("per-element mask, ragged tail") {
    const int64_t n = cap - 3;  // the last thread's vector is partly outside
    check(vector_mask, n, [&](int64_t i) { return i < n && m[size_t(i)] != 0; });
  }
}

// ---- Program ids ----

TEST_CASE("language: program_id(0), (1), (2) over a 3-D grid, thread_id within each program") {
  const int T = 8;
  Signature sig{Arg::pointer("ids", DType::i64), Arg::pointer("runs", DType::i64), Arg::pointer("thread_runs", DType::i64),
                Arg::int64("gx"), Arg::int64("gy")};
  Kernel k("lang_program_ids", sig, "v1", T, [](Builder& b) {
    Value px = b.program_id(0), py = b.program_id(1), pz = b.program_id(2);
    Value linear = (pz * b.param("gy") + py) * b.param("gx") + px;
    Value tid = b.thread_id();
    b.if_then(tid == 0.0, [&] {
      Value at = b.param("ids") + linear * 3.0;
      b.store(at, px);
      b.store(at + 1.0, py);
      b.store(at + 2.0, pz);
      Value r = b.param("runs") + linear;
      b.store(r, b.load(r) + 1.0);  // a program that ran twice would leave 2
    });
    Value tr = b.param("thread_runs") + (linear * b.threads() + tid);
    b.store(tr, b.load(tr) + 1.0);
  });
  const Grid g{3, 4, 5};
  const int64_t programs = g.x * g.y * g.z;
  std::vector<int64_t> ids(static_cast<size_t>(3 * programs + 3)), runs(size_t(programs), 0), thread_runs(size_t(programs * T), 0);
  poison(ids);
  ArgPack args(k.signature());
  args.set("ids", ids.data()).set("runs", runs.data()).set("thread_runs", thread_runs.data());
  args.set("gx", g.x).set("gy", g.y);
  k.launch(kHost, g, args);
  std::vector<int> seen(size_t(programs), 0);
  int64_t wrong = 0;
  for (int64_t p = 0; p < programs; ++p) {
    int64_t x = ids[size_t(3 * p)], y = ids[size_t(3 * p + 1)], z = ids[size_t(3 * p + 2)];
    if (x < 0 || x >= g.x || y < 0 || y >= g.y || z < 0 || z >= g.z) {
      ++wrong;
      continue;
    }
    seen[size_t((z * g.y + y) * g.x + x)]++;
    wrong += (z * g.y + y) * g.x + x != p;
    wrong += runs[size_t(p)] != 1;
  }
  CHECK(wrong == 0);
  CHECK(std::all_of(seen.begin(), seen.end(), [](int s) { return s == 1; }));
  CHECK(std::all_of(thread_runs.begin(), thread_runs.end(), [](int64_t r) { return r == 1; }));
  for (size_t i = size_t(3 * programs); i < ids.size(); ++i) CHECK(is_poison(ids[i]));
}

// ---- Casts and integer arithmetic ----

TEST_CASE("language: casts (i64 <-> f32, i32 <-> i64, f32 -> i32), udiv/urem/ult, signed / and %") {
  constexpr int kI64 = 11, kF32 = 3, kI32 = 5;
  Signature sig{Arg::pointer("xi", DType::i64, true), Arg::pointer("d", DType::i64, true),
                Arg::pointer("xf", DType::f32, true), Arg::pointer("xs", DType::i32, true),
                Arg::pointer("out_i", DType::i64),    Arg::pointer("out_f", DType::f32),
                Arg::pointer("out_s", DType::i32),    Arg::int64("n")};
  Kernel k("lang_casts", sig, "v1", 32, [](Builder& b) {
    Value i = first_element(b, 2);  // vectors of 2
    Value n = b.param("n");
    Value xi = b.load(b.param("xi") + i, 2), d = b.load(b.param("d") + i, 2);
    Value xf = b.load(b.param("xf") + i, 2), xs = b.load(b.param("xs") + i, 2);
    Value oi[kI64] = {b.cast(xf, Elem::i64),
                      b.cast(xs, Elem::i64),
                      xi / d,
                      xi % d,
                      b.udiv(xi, d),
                      b.urem(xi, d),
                      b.cast(b.ult(xi, d), Elem::i64),
                      b.cast(xi < d, Elem::i64),
                      b.min(xi, d),
                      b.max(xi, d),
                      b.cast(b.cast(xi, Elem::i32), Elem::i64)};
    for (int o = 0; o < kI64; ++o) b.store(b.param("out_i") + (i + n * double(o)), oi[o]);
    Value of[kF32] = {b.cast(xi, Elem::f32), b.cast(xs, Elem::f32), b.cast(xs / 7.0, Elem::f32) * 0.5};
    for (int o = 0; o < kF32; ++o) b.store(b.param("out_f") + (i + n * double(o)), of[o]);
    Value os[kI32] = {b.cast(xi, Elem::i32), b.cast(xf, Elem::i32), xs / -3.0, xs % 7.0, xs * 3.0 - 5.0};
    for (int o = 0; o < kI32; ++o) b.store(b.param("out_s") + (i + n * double(o)), os[o]);
  });

  const int64_t n = 2 * 32 * 2;
  std::mt19937_64 rng(8);
  std::vector<int64_t> xi(static_cast<size_t>(n)), d(static_cast<size_t>(n));
  std::vector<float> xf(static_cast<size_t>(n));
  std::vector<int32_t> xs(static_cast<size_t>(n));
  std::uniform_int_distribution<int64_t> big(-(int64_t(1) << 40), int64_t(1) << 40), small(-1000, 1000);
  std::uniform_real_distribution<double> fr(-3e9, 3e9), ff(-5.0, 5.0);
  for (int64_t j = 0; j < n; ++j) {
    xi[size_t(j)] = j % 4 == 0 ? small(rng) : big(rng);
    do d[size_t(j)] = small(rng);
    while (d[size_t(j)] == 0);
    xf[size_t(j)] = float(j % 2 ? fr(rng) : ff(rng));
    xs[size_t(j)] = int32_t(small(rng) * 1000 + small(rng));
  }
  // Rounding of i64 -> f32 at ties and past 2^24, and f32 -> int toward zero at the edges.
  const int64_t special_i[] = {16777217, 16777219, -16777217, (int64_t(1) << 53) + 1, -(int64_t(1) << 62) - 1, 0, -1, 5};
  for (size_t j = 0; j < std::size(special_i); ++j) xi[j] = special_i[j];
  const float special_f[] = {-2.7f, 2.7f, -0.5f, 0.99999994f, -1e9f, 2147483520.0f, -2147483648.0f, 1e-30f};
  for (size_t j = 0; j < std::size(special_f); ++j) xf[j] = special_f[j];
  xs[0] = INT32_MIN / 2, xs[1] = -7, xs[2] = 7, xs[3] = -1;

  std::vector<int64_t> out_i(static_cast<size_t>(kI64 * n));
  std::vector<float> out_f(static_cast<size_t>(kF32 * n));
  std::vector<int32_t> out_s(static_cast<size_t>(kI32 * n));
  poison(out_i), poison(out_f), poison(out_s);
  ArgPack args(k.signature());
  args.set("xi", xi.data()).set("d", d.data()).set("xf", xf.data()).set("xs", xs.data());
  args.set("out_i", out_i.data()).set("out_f", out_f.data()).set("out_s", out_s.data()).set("n", n);
  k.launch(kHost, Grid{2}, args);

  const std::string ni[kI64] = {"cast f32->i64", "cast i32->i64", "/", "%", "udiv", "urem", "ult", "<", "min", "max",
                          "cast i64->i32->i64"};
  const std::string nf[kF32] = {"cast i64->f32", "cast i32->f32", "cast (i32 / 7)->f32 * 0.5"};
  const std::string ns[kI32] = {"cast i64->i32", "cast f32->i32", "i32 / -3", "i32 % 7", "i32 * 3 - 5"};
  for (int64_t j = 0; j < n; ++j) {
    const int64_t a = xi[size_t(j)], dv = d[size_t(j)];
    const float f = xf[size_t(j)];
    const int32_t s = xs[size_t(j)];
    const int64_t ei[kI64] = {int64_t(f),
                              int64_t(s),
                              a / dv,
                              a % dv,
                              int64_t(uint64_t(a) / uint64_t(dv)),
                              int64_t(uint64_t(a) % uint64_t(dv)),
                              int64_t(uint64_t(a) < uint64_t(dv)),
                              int64_t(a < dv),
                              std::min(a, dv),
                              std::max(a, dv),
                              int64_t(int32_t(uint32_t(uint64_t(a))))};
    for (int o = 0; o < kI64; ++o)
      CHECK_MESSAGE(out_i[size_t(o * n + j)] == ei[o],
                    ni[o] << " at " << j << ": got " << out_i[size_t(o * n + j)] << ", expected " << ei[o] << " (a=" << a
                          << ", d=" << dv << ", f=" << f << ", s=" << s << ")");
    const float ef[kF32] = {float(a), float(s), float(s / 7) * 0.5f};
    for (int o = 0; o < kF32; ++o)
      CHECK_MESSAGE(bits_of(out_f[size_t(o * n + j)]) == bits_of(ef[o]),
                    nf[o] << " at " << j << ": got " << out_f[size_t(o * n + j)] << ", expected " << ef[o]);
    // f32 -> i32 only where it fits (out of range is undefined, as in C).
    const bool fits = f >= -2147483648.0f && f < 2147483648.0f;
    const int32_t es[kI32] = {int32_t(uint32_t(uint64_t(a))), fits ? int32_t(f) : out_s[size_t(n + j)], s / -3, s % 7,
                              int32_t(uint32_t(int64_t(s) * 3 - 5))};
    for (int o = 0; o < kI32; ++o)
      CHECK_MESSAGE(out_s[size_t(o * n + j)] == es[o],
                    ns[o] << " at " << j << ": got " << out_s[size_t(o * n + j)] << ", expected " << es[o]);
  }
}

// ---- Reductions ----

namespace {

struct ReduceCase {
  int threads, lanes, width;
};

// The warp-order sum the header promises (a butterfly within 32 lanes, then warps in order), on the
// host in f32, for group `first..first+L` of element e: what both backends must give bit for bit.
float butterfly(const std::vector<float>& x, int64_t first, int L, int W, int e, bool is_max) {
  const int warp = std::min(L, 32);
  std::vector<float> r(static_cast<size_t>(L));
  for (int t = 0; t < L; ++t) r[size_t(t)] = x[size_t((first + t) * W + e)];
  for (int o = warp / 2; o >= 1; o /= 2) {
    std::vector<float> next(r.size());
    for (int t = 0; t < L; ++t) {
      float a = r[size_t(t)], b = r[size_t(t ^ o)];
      next[size_t(t)] = is_max ? std::fmax(a, b) : a + b;
    }
    r = next;
  }
  float acc = r[0];
  for (int w = 1; w < L / 32; ++w) acc = is_max ? std::fmax(acc, r[size_t(32 * w)]) : acc + r[size_t(32 * w)];
  return acc;
}

void check_reduction(const ReduceCase& c, uint64_t seed) {
  const int T = c.threads, W = c.width, L = c.lanes ? c.lanes : c.threads;
  INFO("threads " << T << ", lanes " << c.lanes << ", width " << W);
  Signature sig{Arg::pointer("x", DType::f32, true), Arg::pointer("sum", DType::f32), Arg::pointer("max", DType::f32),
                Arg::pointer("after", DType::f32), Arg::pointer("after2", DType::f32), Arg::pointer("tid", DType::i64)};
  Kernel k("lang_reduce", sig, fmt::format("l{}.w{}.v1", c.lanes, W), T, [&](Builder& b) {
    Value t = b.thread_id();
    Value row = b.program_id() * b.threads() + t;  // computed before the reductions, used after them
    Value at = row * double(W);
    Value v = b.load(b.param("x") + at, W);
    Value sq = v * v;
    Value s = b.reduce_sum(v, c.lanes);
    b.store(b.param("sum") + at, s);
    b.store(b.param("after") + at, v * s);  // this thread's own input times its group's sum
    Value m = b.reduce_max(v, c.lanes);     // a second split: sq crosses both
    b.store(b.param("max") + at, m);
    b.store(b.param("after2") + at, sq * m);
    b.store(b.param("tid") + row, t);
  });

  const int64_t programs = 3, rows = programs * T, n = rows * W;
  auto x = random_floats(size_t(n), seed);
  std::vector<float> sum(static_cast<size_t>(n)), mx(sum), after(sum), after2(sum);
  std::vector<int64_t> tid(static_cast<size_t>(rows));
  poison(sum), poison(mx), poison(after), poison(after2), poison(tid);
  ArgPack args(k.signature());
  args.set("x", x.data()).set("sum", sum.data()).set("max", mx.data()).set("after", after.data());
  args.set("after2", after2.data()).set("tid", tid.data());
  k.launch(kHost, Grid{programs}, args);

  int64_t bad_bound = 0, bad_order = 0, bad_max = 0, not_uniform = 0, bad_after = 0, bad_tid = 0;
  double worst = 0;
  const bool packed = (L & (L - 1)) != 0;
  // Packed groups (lanes not a power of two) add in lane order; spare threads keep their own value.
  auto ordered = [&](int64_t first, int size, int e, bool is_max) {
    if (!packed) return butterfly(x, first, L, W, e, is_max);
    float acc = x[size_t(first * W + e)];
    for (int t = 1; t < size; ++t) {
      float v = x[size_t((first + t) * W + e)];
      acc = is_max ? std::fmax(acc, v) : acc + v;
    }
    return acc;
  };
  for (int64_t p = 0; p < programs; ++p)
    for (const LaneGroup& g : lane_groups(T, c.lanes))
    for (int e = 0; e < W; ++e) {
      const int64_t first = p * T + g.first;
      const int size = g.size;
      double exact = 0, abs_sum = 0;
      float exact_max = -std::numeric_limits<float>::infinity();
      for (int t = 0; t < size; ++t) {
        float v = x[size_t((first + t) * W + e)];
        exact += v, abs_sum += std::fabs(double(v)), exact_max = std::max(exact_max, v);
      }
      const float got = sum[size_t(first * W + e)], got_max = mx[size_t(first * W + e)];
      // Any order of size - 1 f32 additions: |error| <= (size - 1) 2^-24 sum|x| (to first order).
      const double bound = double(size - 1) * 0x1p-24 * abs_sum;
      const double err = std::fabs(double(got) - exact);
      if (!(err <= bound)) ++bad_bound;
      if (bound > 0) worst = std::max(worst, err / bound);
      if (bits_of(got) != bits_of(ordered(first, size, e, false))) ++bad_order;
      if (bits_of(got_max) != bits_of(exact_max) || bits_of(got_max) != bits_of(ordered(first, size, e, true)))
        ++bad_max;
      for (int t = 0; t < size; ++t) {
        size_t at = size_t((first + t) * W + e);
        if (bits_of(sum[at]) != bits_of(got) || bits_of(mx[at]) != bits_of(got_max)) ++not_uniform;
        if (bits_of(after[at]) != bits_of(x[at] * got)) ++bad_after;
        float sq = x[at] * x[at];
        if (bits_of(after2[at]) != bits_of(sq * got_max)) ++bad_after;
      }
    }
  for (int64_t r = 0; r < rows; ++r) bad_tid += tid[size_t(r)] != r % T;
  CHECK_MESSAGE(bad_bound == 0, bad_bound << " group sums outside (L-1) 2^-24 sum|x|");
  CHECK_MESSAGE(bad_order == 0, bad_order << " group sums differ from the warp-order sum");
  CHECK(bad_max == 0);
  CHECK(not_uniform == 0);
  CHECK(bad_after == 0);
  CHECK(bad_tid == 0);
  CHECK(worst <= 1.0);
}

}  // namespace

TEST_CASE("language: reduce_sum and reduce_max over 1, 4, 32, 64 lanes and the whole program") {
  uint64_t seed = 100;
  for (int threads : {128, 256})
    for (int lanes : {1, 4, 32, 64, 0})
      for (int width : {1, 3}) check_reduction({threads, lanes, width}, seed++);
  check_reduction({256, 128, 1}, seed++);
  check_reduction({32, 0, 3}, seed++);  // one warp: no cross-warp step
}

TEST_CASE("language: reductions over lane counts that do not divide the warp pack whole groups into each warp") {
  uint64_t seed = 300;
  for (int lanes : {3, 5, 6, 12, 20, 31})
    for (int width : {1, 4}) check_reduction({64, lanes, width}, seed++);
  check_reduction({8, 6, 2}, seed++);    // a program smaller than a warp: one group and two spare threads
  check_reduction({16, 12, 1}, seed++);
}

TEST_CASE("language: a value reduced twice, and a reduction of a value made after an earlier reduction") {
  Signature sig{Arg::pointer("x", DType::f32, true), Arg::pointer("y", DType::f32)};
  Kernel k("lang_reduce_chain", sig, "v1", 128, [](Builder& b) {
    Value row = b.program_id() * b.threads() + b.thread_id();
    Value v = b.load(b.param("x") + row);
    Value s = b.reduce_sum(v, 32);
    Value centred = v - s / 32.0;              // uses v (segment 0) and s (segment 1)
    Value var = b.reduce_sum(centred * centred, 0);  // over the whole program
    b.store(b.param("y") + row, centred / b.sqrt(var + 1.0));
  });
  const int64_t T = 128, programs = 2;
  auto x = random_floats(size_t(T * programs), 9);
  std::vector<float> y(static_cast<size_t>(T * programs));
  poison(y);
  ArgPack args(k.signature());
  args.set("x", x.data()).set("y", y.data());
  k.launch(kHost, Grid{programs}, args);
  int64_t wrong = 0;
  for (int64_t p = 0; p < programs; ++p) {
    std::vector<float> centred(static_cast<size_t>(T));
    for (int64_t w = 0; w < T / 32; ++w) {
      float s = butterfly(x, p * T + w * 32, 32, 1, 0, false);
      for (int64_t t = 0; t < 32; ++t) {
        size_t i = size_t(w * 32 + t);
        centred[i] = x[size_t(p * T) + i] - s / 32.0f;
      }
    }
    std::vector<float> sq(static_cast<size_t>(T));
    for (size_t i = 0; i < sq.size(); ++i) sq[i] = centred[i] * centred[i];
    float var = butterfly(sq, 0, int(T), 1, 0, false);
    for (int64_t t = 0; t < T; ++t) {
      float expect = centred[size_t(t)] / std::sqrt(var + 1.0f);
      wrong += bits_of(y[size_t(p * T + t)]) != bits_of(expect);
    }
  }
  CHECK(wrong == 0);
}

TEST_CASE("language: PTX of reductions: shuffles within a warp, a barrier only where a group spans warps") {
  auto make = [](int lanes) {
    Signature sig{Arg::pointer("x", DType::f32, true), Arg::pointer("y", DType::f32)};
    return Kernel("lang_reduce_ptx", sig, fmt::format("l{}", lanes), 128, [lanes](Builder& b) {
      Value row = b.program_id() * b.threads() + b.thread_id();
      b.store(b.param("y") + row, b.reduce_sum(b.load(b.param("x") + row), lanes));
    });
  };
  auto has_barrier = [](const std::string& ptx) {
    return ptx.find("bar.sync") != std::string::npos || ptx.find("barrier") != std::string::npos;
  };
  std::string p64 = make(64).ptx(90);
  CHECK(p64.find("shfl.sync.bfly") != std::string::npos);
  CHECK(has_barrier(p64));
  std::string p32 = make(32).ptx(90);
  CHECK(p32.find("shfl.sync.bfly") != std::string::npos);
  CHECK_FALSE(has_barrier(p32));
  std::string p0 = make(0).ptx(80);
  CHECK(p0.find("shfl.sync.bfly") != std::string::npos);
  CHECK(has_barrier(p0));
  std::string p6 = make(6).ptx(90);  // packed groups: indexed shuffles only, no butterfly, no barrier
  CHECK(p6.find("shfl.sync.idx") != std::string::npos);
  CHECK(p6.find("shfl.sync.bfly") == std::string::npos);
  CHECK_FALSE(has_barrier(p6));
}

// ---- Errors ----

namespace {
Signature small_signature() {
  return Signature{Arg::pointer("x", DType::f32, true), Arg::pointer("y", DType::f32), Arg::int64("n")};
}

// Builds (by launching once) a kernel whose body misuses the language; the error must name the misuse.
void check_bad_body(const std::string& name, std::function<void(Builder&)> body, std::initializer_list<std::string> words) {
  INFO(name);
  Kernel k(name, small_signature(), "v1", 128, std::move(body));
  std::vector<float> x(256, 1.0f), y(256);
  poison(y);
  ArgPack args(k.signature());
  args.set("x", x.data()).set("y", y.data()).set("n", int64_t(256));
  check_error([&] { k.launch(kHost, Grid{2}, args); }, ErrorKind::invalid_argument, words);
  CHECK(std::all_of(y.begin(), y.end(), [](float v) { return is_poison(v); }));
}
}  // namespace

TEST_CASE("language errors: misuse in a kernel body is an invalid_argument Error naming it") {
  check_bad_body("lang_err_shift_float", [](Builder& b) {
    b.store(b.param("y") + b.thread_id(), b.shift_left(b.load(b.param("x") + b.thread_id()), 1));
  }, {"shift_left", "integers"});
  check_bad_body("lang_err_shift_64", [](Builder& b) {
    b.store(b.param("y") + b.thread_id(), b.cast(b.shift_right(b.thread_id(), 64), Elem::f32));
  }, {"shift by 64 bits"});
  check_bad_body("lang_err_sincos_f32", [](Builder& b) {
    b.store(b.param("y") + b.thread_id(), b.sincos_turns(b.load(b.param("x") + b.thread_id())).first);
  }, {"sincos_turns", "i64"});
  check_bad_body("lang_err_reduce_in_if", [](Builder& b) {
    Value v = b.load(b.param("x") + b.thread_id());
    b.if_then(b.thread_id() < 3.0, [&] { b.store(b.param("y") + b.thread_id(), b.reduce_sum(v)); });
  }, {"reduce_sum", "if_then"});
  check_bad_body("lang_err_reduce_in_for", [](Builder& b) {
    b.for_range(b.i64(0), b.i64(2), 1, [&](Value j) {
      b.store(b.param("y") + (b.thread_id() + j), b.reduce_max(b.load(b.param("x") + j)));
    });
  }, {"reduce_max", "for_range"});
  check_bad_body("lang_err_reduce_after_return", [](Builder& b) {
    b.return_if(b.thread_id() >= b.param("n"));
    b.store(b.param("y") + b.thread_id(), b.reduce_sum(b.load(b.param("x") + b.thread_id())));
  }, {"reduce_sum", "return_if"});
  check_bad_body("lang_err_lanes_48", [](Builder& b) {  // past a warp, only powers of two
    b.store(b.param("y") + b.thread_id(), b.reduce_sum(b.load(b.param("x") + b.thread_id()), 48));
  }, {"48 lanes", "power of two"});
  check_bad_body("lang_err_lanes_256", [](Builder& b) {  // more lanes than the program's 128 threads
    b.store(b.param("y") + b.thread_id(), b.reduce_sum(b.load(b.param("x") + b.thread_id()), 256));
  }, {"256 lanes", "128 threads"});
  check_bad_body("lang_err_reduce_int", [](Builder& b) {
    b.store(b.param("y") + b.thread_id(), b.cast(b.reduce_sum(b.thread_id()), Elem::f32));
  }, {"reduce_sum", "f32"});
  check_bad_body("lang_err_load_non_pointer", [](Builder& b) {
    b.store(b.param("y") + b.thread_id(), b.load(b.param("n")));
  }, {"load", "pointer"});
  check_bad_body("lang_err_store_non_pointer", [](Builder& b) {
    b.store(b.param("n"), b.load(b.param("x")));
  }, {"store", "pointer"});
  check_bad_body("lang_err_mixed_types", [](Builder& b) {
    Value v = b.load(b.param("x") + b.thread_id());
    b.store(b.param("y") + b.thread_id(), v + b.thread_id());  // f32 + i64
  }, {"f32", "i64", "cast"});
  check_bad_body("lang_err_mixed_widths", [](Builder& b) {
    Value v = b.load(b.param("x"), 4) + b.load(b.param("x"), 2);
    b.store(b.param("y"), v);
  }, {"widths"});
  check_bad_body("lang_err_unknown_param", [](Builder& b) {
    b.store(b.param("y") + b.thread_id(), b.load(b.param("nope") + b.thread_id()));
  }, {"nope"});
  check_bad_body("lang_err_store_wrong_type", [](Builder& b) {
    b.store(b.param("y") + b.thread_id(), b.thread_id());  // an i64 into f32 memory
  }, {"f32", "wrong type"});
  check_bad_body("lang_err_pointer_mul", [](Builder& b) {
    b.store(b.param("y") * 2.0, b.load(b.param("x")));
  }, {"pointer"});
}

TEST_CASE("language errors: Signature and ArgPack name the parameter") {
  const Signature sig = small_signature();
  check_error([&] { (void)sig.index("nope"); }, ErrorKind::invalid_argument, {"nope", "(ptr<f32> x, ptr<f32> y, i64 n)"});
  check_error([] { Signature s{Arg::int64("a"), Arg::int64("a")}; }, ErrorKind::invalid_argument, {"'a'"});
  check_error([] { Signature s{Arg::int64("")}; }, ErrorKind::invalid_argument, {"no name"});

  std::vector<float> x(4, 1.0f);
  ArgPack args(sig);
  check_error([&] { args.set("nope", x.data()); }, ErrorKind::invalid_argument, {"nope"});
  check_error([&] { args.set("n", x.data()); }, ErrorKind::invalid_argument, {"'n'", "i64", "pointer"});
  check_error([&] { args.set("x", int64_t(3)); }, ErrorKind::invalid_argument, {"'x'", "pointer", "i64"});
  check_error([&] { args.set("x", 1.5); }, ErrorKind::invalid_argument, {"'x'", "pointer", "f32"});
  check_error([&] { args.check_complete(); }, ErrorKind::invalid_argument, {"'x'", "never given"});
}

TEST_CASE("language errors: launching with a missing argument, foreign arguments, or an empty grid writes nothing") {
  Kernel k("lang_err_launch", small_signature(), "v1", 32, [](Builder& b) {
    Value i = b.program_id() * b.threads() + b.thread_id();
    b.store(b.param("y") + i, b.load(b.param("x") + i) * 2.0, {.mask = i < b.param("n")});
  });
  std::vector<float> x(64, 1.0f), y(64);
  poison(y);
  auto untouched = [&] { return std::all_of(y.begin(), y.end(), [](float v) { return is_poison(v); }); };

  ArgPack missing(k.signature());
  missing.set("x", x.data()).set("n", int64_t(64));
  check_error([&] { k.launch(kHost, Grid{2}, missing); }, ErrorKind::invalid_argument, {"'y'", "never given"});
  CHECK(untouched());

  Signature other{Arg::pointer("x", DType::f16), Arg::pointer("y", DType::f32), Arg::int64("n")};
  ArgPack foreign(other);
  foreign.set("x", x.data()).set("y", y.data()).set("n", int64_t(64));
  check_error([&] { k.launch(kHost, Grid{2}, foreign); }, ErrorKind::invalid_argument, {"another signature"});
  CHECK(untouched());

  ArgPack good(k.signature());
  good.set("x", x.data()).set("y", y.data()).set("n", int64_t(64));
  check_error([&] { k.launch(kHost, Grid{0}, good); }, ErrorKind::invalid_argument, {"empty grid"});
  CHECK(untouched());
  k.launch(kHost, Grid{2}, good);  // and the same pack works once complete
  CHECK(std::all_of(y.begin(), y.end(), [](float v) { return v == 2.0f; }));
}

TEST_CASE("language errors: bad kernel definitions") {
  auto body = [](Builder&) {};
  check_error([&] { Kernel k("bad name", small_signature(), "v1", 32, body); }, ErrorKind::invalid_argument, {"bad name"});
  check_error([&] { Kernel k("", small_signature(), "v1", 32, body); }, ErrorKind::invalid_argument, {"empty name"});
  check_error([&] { Kernel k("lang_err_threads", small_signature(), "v1", 96, body); }, ErrorKind::invalid_argument,
              {"96 threads", "power of two"});
  check_error([&] { Kernel k("lang_err_threads2", small_signature(), "v1", 2048, body); }, ErrorKind::invalid_argument,
              {"2048 threads"});
}

TEST_CASE("language: a Kernel made again with the same name and key (or a key of the same symbol) runs on the host") {
  // The host backend JITs every kernel into one process-wide library under a symbol made from its key;
  // a second definition of the same key (the same code, e.g. a Kernel re-created in a later call) must
  // still run, as it does on the GPU, where each kernel is its own module.
  auto make = [](const std::string& key, double factor) {
    return Kernel("lang_same_key", small_signature(), key, 32, [factor](Builder& b) {
      Value i = b.program_id() * b.threads() + b.thread_id();
      b.store(b.param("y") + i, b.load(b.param("x") + i) * factor, {.mask = i < b.param("n")});
    });
  };
  auto run = [](const Kernel& k, float expect) {
    std::vector<float> x(64, 1.0f), y(64);
    poison(y);
    ArgPack args(k.signature());
    args.set("x", x.data()).set("y", y.data()).set("n", int64_t(64));
    try {
      k.launch(kHost, Grid{2}, args);
    } catch (const Error& e) {
      FAIL_CHECK(std::string(e.what()));
      return;
    }
    CHECK(std::all_of(y.begin(), y.end(), [&](float v) { return v == expect; }));
  };
  {
    Kernel first = make("v1", 2.0);
    run(first, 2.0f);
  }
  Kernel again = make("v1", 2.0);  // the same definition, made again after the first one is gone
  run(again, 2.0f);
  Kernel dotted = make("a.b", 3.0), underscored = make("a_b", 5.0);  // different keys
  run(dotted, 3.0f);
  run(underscored, 5.0f);
}

TEST_CASE("language: return_program_if on the host lets every thread run what comes before it, as on the GPU") {
  Signature sig{Arg::pointer("y", DType::f32)};
  Kernel k("early_return", sig, "v1", 4, [](Builder& b) {
    Value i = b.program_id() * b.threads() + b.thread_id();
    b.store(b.param("y") + i, b.f32(1.0f));
    b.return_program_if(b.program_id() == 0.0);
    b.store(b.param("y") + i, b.f32(2.0f));
  });
  std::vector<float> y(8, 0.0f);
  ArgPack args(k.signature());
  args.set("y", y.data());
  k.launch(Backend::host, Grid{2}, args);
  CHECK(y == std::vector<float>{1, 1, 1, 1, 2, 2, 2, 2});
  // And after a reduction: the program ends once every thread has reached the return.
  Kernel r("early_return_reduce", sig, "v1", 8, [](Builder& b) {
    Value i = b.program_id() * b.threads() + b.thread_id();
    Value s = b.reduce_sum(b.f32(1.0f), 0);
    b.store(b.param("y") + i, s);
    b.return_program_if(b.program_id() == 1.0);
    b.store(b.param("y") + i, s * 2.0);
  });
  std::vector<float> z(16, 0.0f);
  ArgPack ra(r.signature());
  ra.set("y", z.data());
  r.launch(Backend::host, Grid{2}, ra);
  for (int i = 0; i < 16; ++i) CHECK(z[size_t(i)] == (i < 8 ? 16.0f : 8.0f));
}

TEST_CASE("language errors: a value made inside a body and used after a reduction; bits of f32 masked") {
  Signature sig{Arg::pointer("x", DType::f32), Arg::pointer("y", DType::f32)};
  Kernel bad("scoped", sig, "v1", 32, [](Builder& b) {
    Value v = b.f32(0.0f);
    b.if_then(b.thread_id() < 3.0, [&] { v = b.load(b.param("x") + b.thread_id()); });
    Value s = b.reduce_sum(b.f32(1.0f), 0);
    b.store(b.param("y") + b.thread_id(), v + s);
  });
  std::vector<float> x(32, 1.0f), y(32, -1.0f);
  ArgPack args(bad.signature());
  args.set("x", x.data()).set("y", y.data());
  check_error([&] { bad.launch(Backend::host, Grid{1}, args); }, ErrorKind::invalid_argument, {"used after a reduction"});
  // Masked load_bits of f32 storage gives i32 bits; from_bits gives the values back.
  Kernel bits("f32_bits", sig, "v1", 32, [](Builder& b) {
    Value i = b.thread_id();
    Value raw = b.load_bits(b.param("x") + i, 1, {.mask = i < 16.0});
    b.store(b.param("y") + i, b.from_bits(raw, DType::f32));
  });
  ArgPack ba(bits.signature());
  ba.set("x", x.data()).set("y", y.data());
  bits.launch(Backend::host, Grid{1}, ba);
  for (int i = 0; i < 32; ++i) CHECK(y[size_t(i)] == (i < 16 ? 1.0f : 0.0f));
}

TEST_CASE("language: the disk key covers the signature; spec keys are checked") {
  auto body = [](Builder& b) { b.store(b.param("y") + b.thread_id(), b.load(b.param("y") + b.thread_id())); };
  Kernel a("sigkey", Signature{Arg::pointer("y", DType::f32)}, "v1", 32, body);
  Kernel c("sigkey", Signature{Arg::pointer("y", DType::bf16)}, "v1", 32, body);
  auto ka = precompile(a, {90}), kc = precompile(c, {90});
  REQUIRE(ka.size() == 1);
  REQUIRE(kc.size() == 1);
  CHECK(ka[0].key != kc[0].key);
  CHECK(ka[0].ptx != kc[0].ptx);
  check_error([&] { Kernel bad("k", Signature{Arg::pointer("y", DType::f32)}, "v\"1", 32, body); },
              ErrorKind::invalid_argument, {"spec_key"});
  check_error([&] { (void)embed_bundle_source(ka, "a-b"); }, ErrorKind::invalid_argument, {"C identifier"});
}
