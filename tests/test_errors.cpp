// Every bad input gets a ropejit::Error that names the problem, and nothing is written.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "ropejit/ropejit.hpp"
#include "support.hpp"

using namespace ropejit;
using namespace ropejit::test;

namespace {

// A valid in-place bf16 call on the host that each test case breaks in one way.
struct Setup {
  HostTensor q{Layout::bshd, DType::bf16, 2, 4, 8, 64};
  HostTensor k{Layout::bshd, DType::bf16, 2, 4, 2, 64};
  HostTensor q_out{Layout::bshd, DType::bf16, 2, 4, 8, 64};
  HostTensor k_out{Layout::bshd, DType::bf16, 2, 4, 2, 64};
  RopeTable table{Backend::host, 64, 64, 10000.0, DType::f32};
  std::vector<int32_t> ids = std::vector<int32_t>(8, 3);
  RopeOptions opt;
  Positions pos = Positions::contiguous(1);
  std::vector<uint8_t> q0, k0, qo0, ko0;

  Setup() {
    std::mt19937_64 rng(3);
    q.fill_random(rng);
    k.fill_random(rng);
    q_out.poison();
    k_out.poison();
    opt.backend = Backend::host;
    q0 = q.bytes, k0 = k.bytes, qo0 = q_out.bytes, ko0 = k_out.bytes;
  }
  void run(const TensorView* kv = nullptr, const CosSinTable* t = nullptr) {
    apply_rope(q.view, kv ? kv : &k.view, pos, t ? *t : table.view(), opt);
  }
  bool untouched() const { return q.bytes == q0 && k.bytes == k0 && q_out.bytes == qo0 && k_out.bytes == ko0; }
};

#define CHECK_REJECTS(setup, call, text)                                  \
  do {                                                                    \
    CHECK_THROWS_WITH_AS(call, doctest::Contains(text), ropejit::Error);  \
    CHECK_MESSAGE((setup).untouched(), "an input or output was written"); \
  } while (0)

}  // namespace

TEST_CASE("the valid setup itself runs (so the rejections below are about their one change)") {
  Setup s;
  s.run();
  CHECK(s.q.bytes != s.q0);
}

TEST_CASE("errors: shapes, strides and dtypes") {
  { Setup s; s.k.view.seq = 3; CHECK_REJECTS(s, s.run(), "k: shape"); }
  { Setup s; s.k.view.head_dim = 32; CHECK_REJECTS(s, s.run(), "k: shape"); }
  { Setup s; s.k.view.dtype = DType::f16; CHECK_REJECTS(s, s.run(), "k: dtype f16 differs"); }
  { Setup s; s.q.view.dtype = DType::i32; CHECK_REJECTS(s, s.run(), "q: dtype i32 is not supported"); }
  { Setup s; s.q.view.heads = 0; CHECK_REJECTS(s, s.run(), "q: shape"); }
  { Setup s; s.q.view.stride_head = -64; CHECK_REJECTS(s, s.run(), "q: strides"); }
  { Setup s; s.q.view.stride_head = 32; CHECK_REJECTS(s, s.run(), "two head indices would reach the same elements"); }
  { Setup s; s.opt.q_out = s.q_out.view; s.opt.q_out->heads = 4; s.opt.k_out = s.k_out.view; CHECK_REJECTS(s, s.run(), "q_out: shape"); }
  { Setup s; s.opt.q_out = s.q_out.view; CHECK_REJECTS(s, s.run(), "k_out: missing"); }
  { Setup s; s.opt.k_out = s.k_out.view; CHECK_REJECTS(s, s.run(), "q_out: missing"); }
  { Setup s; s.opt.q_out = s.q.view; s.opt.k_out = s.k_out.view; CHECK_REJECTS(s, s.run(), "q_out and q share elements"); }
}

TEST_CASE("errors: head_dim and rotary_dim") {
  { Setup s; s.opt.rotary_dim = 33; CHECK_REJECTS(s, s.run(), "rotary_dim 33 is not supported"); }
  { Setup s; s.opt.rotary_dim = 128; CHECK_REJECTS(s, s.run(), "rotary_dim 128 is larger than head_dim 64"); }
  {
    Setup s;
    s.q.view.head_dim = 63;
    s.k.view.head_dim = 63;
    CHECK_REJECTS(s, s.run(), "head_dim 63 is not supported");
  }
  {
    HostTensor big(Layout::bshd, DType::f32, 1, 1, 1, 514);
    RopeTable t(Backend::host, 4, 514);
    RopeOptions opt;
    opt.backend = Backend::host;
    CHECK_THROWS_WITH_AS(apply_rope(big.view, nullptr, Positions::contiguous(0), t.view(), opt),
                         doctest::Contains("head_dim 514 is not supported"), Error);
  }
}

TEST_CASE("errors: null and misaligned pointers") {
  { Setup s; s.q.view.data = nullptr; CHECK_REJECTS(s, s.run(), "q: null data pointer"); }
  { Setup s; TensorView kv = s.k.view; kv.data = nullptr; CHECK_REJECTS(s, s.run(&kv), "k: null data pointer"); }
  { Setup s; CosSinTable t = s.table.view(); t.sin = nullptr; CHECK_REJECTS(s, s.run(nullptr, &t), "table: null cos or sin"); }
  { Setup s; s.q.view.data = s.q.bytes.data() + 1; CHECK_REJECTS(s, s.run(), "not aligned to its 2-byte elements"); }
  {
    Setup s;
    s.opt.vector_width = 8;
    s.q.view.data = s.q.bytes.data() + 2;  // 2-byte aligned only
    s.q.view.seq = 3;                      // stay inside the buffer
    s.k.view.seq = 3;
    CHECK_REJECTS(s, s.run(), "vector_width 8 needs");
  }
}

TEST_CASE("errors: tables, positions, configs") {
  { Setup s; CosSinTable t = s.table.view(); t.dtype = DType::f16; CHECK_REJECTS(s, s.run(nullptr, &t), "table: dtype f16 is not supported"); }
  { Setup s; CosSinTable t = s.table.view(); t.rotary_dim = 32; CHECK_REJECTS(s, s.run(nullptr, &t), "table: built for rotary_dim 32"); }
  { Setup s; s.pos = Positions::contiguous(61); CHECK_REJECTS(s, s.run(), "runs past the table's max_position 64"); }
  { Setup s; s.pos = Positions::contiguous(-1); CHECK_REJECTS(s, s.run(), "offset -1"); }
  {
    Setup s;
    s.ids[5] = 64;
    s.pos = Positions::from_ids(s.ids.data(), DType::i32);
    CHECK_REJECTS(s, s.run(), "id 64 at token 5 is outside the table's [0, 64)");
  }
  {
    Setup s;
    s.ids[0] = -2;
    s.pos = Positions::from_ids(s.ids.data(), DType::i32);
    CHECK_REJECTS(s, s.run(), "id -2 at token 0");
  }
  { Setup s; s.pos = Positions::from_ids(s.ids.data(), DType::f32); CHECK_REJECTS(s, s.run(), "ids dtype f32 is not supported"); }
  { Setup s; s.opt.threads = 48; CHECK_REJECTS(s, s.run(), "48 threads per program do not fit"); }
  { Setup s; s.opt.threads = 2; CHECK_REJECTS(s, s.run(), "2 threads per program do not fit"); }
  { Setup s; s.opt.vector_width = 3; CHECK_REJECTS(s, s.run(), "vector width 3 does not fit"); }
  // Found by fuzz_ops: the message's byte count overflowed int (UB) for widths past 2^30.
  { Setup s; s.opt.vector_width = 1577058303; CHECK_REJECTS(s, s.run(), "aligned to 3154116606 bytes"); }
  CHECK_THROWS_WITH_AS(RopeTable(Backend::host, 0, 64), doctest::Contains("max_position 0"), Error);
  CHECK_THROWS_WITH_AS(RopeTable(Backend::host, 8, 7), doctest::Contains("rotary_dim 7"), Error);
  CHECK_THROWS_WITH_AS(RopeTable(Backend::host, 8, 8, 10000.0, DType::f16), doctest::Contains("table: dtype f16"), Error);
}

namespace {
bool gpu_present() {
  static const bool present = device_info().available;
  return present;
}
}  // namespace

// Where a driver is present this path cannot be exercised: doctest reports the case as skipped.
TEST_CASE("errors: no driver is a clear error, never a crash" * doctest::skip(gpu_present())) {
  auto info = device_info();
  CHECK(!info.reason.empty());
  MESSAGE("device_info says: " << info.reason);
  Setup s;
  s.opt.backend = Backend::cuda;
  CHECK_THROWS_AS(s.run(), Error);
  CHECK_THROWS_WITH_AS(DeviceBuffer(16), doctest::Contains(info.reason.substr(0, 20).c_str()), Error);
  CHECK(s.untouched());
}

TEST_CASE("errors: views that reach one element twice, offsets that overflow, null ids (each rejected)") {
  { Setup s; s.q.view.stride_seq = 8 * 64 - 1; CHECK_REJECTS(s, s.run(), "two seq indices would reach the same elements"); }
  { Setup s; s.q.view.stride_batch = 3 * 8 * 64; CHECK_REJECTS(s, s.run(), "two batch indices would reach the same elements"); }
  { Setup s; s.pos = Positions::contiguous(INT64_MAX - 1); CHECK_REJECTS(s, s.run(), "runs past the table"); }
  { Setup s; s.pos = Positions::from_ids(nullptr, DType::i32); CHECK_REJECTS(s, s.run(), "null ids pointer"); }
  { Setup s; s.q.view.seq = int64_t(1) << 50; CHECK_REJECTS(s, s.run(), "beyond 2^46"); }
  { Setup s; s.q.view.stride_batch = INT64_MAX / 2; CHECK_REJECTS(s, s.run(), "beyond 2^46"); }
}

TEST_CASE("errors carry a kind") {
  Setup s;
  s.q.view.data = nullptr;
  try {
    s.run();
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::invalid_argument);
    CHECK(std::string(error_kind_name(e.kind())) == "invalid argument");
  }
}

// Engines hold q, k and v as views into one fused [tokens, (Hq + 2 Hk) x D] buffer, and may write
// q_out and k_out into one output buffer the same way: disjoint by elements, so legal.
TEST_CASE("views into one fused QKV buffer are accepted and rotated correctly, in and out of place") {
  const int64_t T = 6, Hq = 8, Hk = 2, D = 64, row = (Hq + 2 * Hk) * D;
  std::vector<uint16_t> qkv(size_t(T * row)), out(size_t(T * (Hq + Hk) * D));
  std::mt19937_64 rng(9);
  for (size_t i = 0; i < qkv.size(); ++i) store_from_double(DType::bf16, qkv.data(), int64_t(i), std::uniform_real_distribution<double>(-2, 2)(rng));
  auto view = [&](uint16_t* base, int64_t stride, int64_t first_head, int64_t heads) {
    return TensorView{base + first_head * D, DType::bf16, 1, T, heads, D, T * stride, stride, D};
  };
  RopeTable table(Backend::host, 64, D);
  auto ref_table = ReferenceTable::from(table.view());
  const auto original = qkv;
  // In place: q = heads [0, Hq), k = heads [Hq, Hq + Hk) of each row; v untouched.
  auto q = view(qkv.data(), row, 0, Hq), k = view(qkv.data(), row, Hq, Hk);
  auto q_in = view(const_cast<uint16_t*>(original.data()), row, 0, Hq), k_in = view(const_cast<uint16_t*>(original.data()), row, Hq, Hk);
  RopeOptions opt;
  opt.backend = Backend::host;
  REQUIRE_NOTHROW(apply_rope(q, &k, Positions::contiguous(2), table.view(), opt));
  CHECK(compare_to_reference(q, reference_rope(q_in, Positions::contiguous(2), ref_table, RopeStyle::neox, D)).ok());
  CHECK(compare_to_reference(k, reference_rope(k_in, Positions::contiguous(2), ref_table, RopeStyle::neox, D)).ok());
  for (int64_t t = 0; t < T; ++t)  // v kept every bit
    CHECK(std::memcmp(&qkv[size_t(t * row + (Hq + Hk) * D)], &original[size_t(t * row + (Hq + Hk) * D)], size_t(Hk * D * 2)) == 0);
  // Out of place into one [tokens, (Hq + Hk) x D] buffer: q_out and k_out interleaved by rows.
  std::memset(out.data(), 0xff, out.size() * 2);
  const int64_t orow = (Hq + Hk) * D;
  opt.q_out = view(out.data(), orow, 0, Hq);
  opt.k_out = view(out.data(), orow, Hq, Hk);
  REQUIRE_NOTHROW(apply_rope(q_in, &k_in, Positions::contiguous(2), table.view(), opt));
  CHECK(compare_to_reference(*opt.q_out, reference_rope(q_in, Positions::contiguous(2), ref_table, RopeStyle::neox, D)).ok());
  CHECK(compare_to_reference(*opt.k_out, reference_rope(k_in, Positions::contiguous(2), ref_table, RopeStyle::neox, D)).ok());
  // q_out interleaved with q in one buffer: q in the first half of each row, q_out in the second.
  std::vector<uint16_t> both(size_t(T * 2 * Hq * D));
  for (size_t i = 0; i < both.size(); ++i) store_from_double(DType::bf16, both.data(), int64_t(i), 0.25 + double(i % 7));
  auto qa = view(both.data(), 2 * Hq * D, 0, Hq), qb = view(both.data(), 2 * Hq * D, Hq, Hq);
  RopeOptions o2;
  o2.backend = Backend::host;
  o2.q_out = qb;
  CHECK_NOTHROW(apply_rope(qa, nullptr, Positions::contiguous(0), table.view(), o2));
  // But a k that shares q's heads is refused, as is an output that overlaps its input by one head.
  auto k_bad = view(qkv.data(), row, Hq - 1, Hk);
  RopeOptions o3;
  o3.backend = Backend::host;
  CHECK_THROWS_WITH_AS(apply_rope(q, &k_bad, Positions::contiguous(2), table.view(), o3), doctest::Contains("k and q share elements"), Error);
  o2.q_out = view(both.data(), 2 * Hq * D, Hq - 1, Hq);
  CHECK_THROWS_WITH_AS(apply_rope(qa, nullptr, Positions::contiguous(0), table.view(), o2), doctest::Contains("q_out and q share elements"), Error);
}

TEST_CASE("errors: out-of-range enums, infinite theta, huge tables are refused") {
  { Setup s; s.opt.style = static_cast<RopeStyle>(9); CHECK_REJECTS(s, s.run(), "style 9"); }
  { Setup s; s.opt.backend = static_cast<Backend>(5); CHECK_REJECTS(s, s.run(), "backend 5"); }
  CHECK_THROWS_WITH_AS(RopeTable(Backend::host, 8, 8, INFINITY), doctest::Contains("theta inf"), Error);
  CHECK_THROWS_WITH_AS(RopeTable(Backend::host, int64_t(1) << 56, 128), doctest::Contains("too large"), Error);
  CHECK_THROWS_WITH_AS(ReferenceTable::exact(int64_t(1) << 56, 128, 1e4), doctest::Contains("out of range"), Error);
  { Setup s; s.pos = Positions::contiguous(-1); CHECK_REJECTS(s, s.run(), "offset -1 is negative"); }
}

TEST_CASE("empty steps (seq 0 or batch 0) are checked and run nothing; strides of size-1 dimensions are ignored") {
  {
    Setup s;
    s.q.view.seq = s.k.view.seq = 0;
    CHECK_NOTHROW(s.run());
    CHECK(s.untouched());
    s.q.view.dtype = DType::i32;  // everything else is still checked
    CHECK_THROWS_WITH_AS(s.run(), doctest::Contains("q: dtype i32"), Error);
  }
  {
    Setup s;
    s.q.view.batch = s.k.view.batch = 0;
    CHECK_NOTHROW(s.run());
    CHECK(s.untouched());
  }
  // Decode: seq 1 with a stride nobody uses (0, or odd): accepted, and the vector width stays 16 bytes.
  HostTensor q(Layout::bshd, DType::bf16, 4, 1, 8, 64), k(Layout::bshd, DType::bf16, 4, 1, 2, 64);
  std::mt19937_64 rng(5);
  q.fill_random(rng);
  k.fill_random(rng);
  RopeTable table(Backend::host, 64, 64);
  RopeOptions opt;
  opt.backend = Backend::host;
  auto qv = q.view, kv = k.view;
  qv.stride_seq = 3;
  kv.stride_seq = 0;
  CHECK(describe_kernel(qv, &kv, Positions::contiguous(2), table.view(), opt).config.vector_width == 8);
  auto ref = reference_rope(q.view, Positions::contiguous(2), ReferenceTable::from(table.view()), RopeStyle::neox, 64);
  REQUIRE_NOTHROW(apply_rope(qv, &kv, Positions::contiguous(2), table.view(), opt));
  CHECK(compare_to_reference(q.view, ref).ok());
}

TEST_CASE("compare_to_reference checks the reference's size; equal infinities and NaN against NaN match") {
  std::vector<float> out = {INFINITY, NAN, 1.0f};
  auto v = TensorView::bshd(out.data(), DType::f32, 1, 1, 1, 3);
  ReferenceResult ref;
  ref.value = {INFINITY, NAN, 1.0};
  ref.scale = {0, 0, 0};
  CHECK(compare_to_reference(v, ref).ok());
  ref.value.pop_back();
  CHECK_THROWS_WITH_AS(compare_to_reference(v, ref), doctest::Contains("the reference has 2 values"), Error);
}

TEST_CASE("errors: specs past 4096 heads, and contiguous views whose size overflows") {
  RopeSpec s;
  s.q_heads = 100000;
  CHECK_THROWS_WITH_AS(s.validate(), doctest::Contains("q heads 100000"), Error);
  s.q_heads = 32;
  s.k_heads = 5000;
  CHECK_THROWS_WITH_AS(s.validate(), doctest::Contains("k heads 5000"), Error);
  CHECK_THROWS_WITH_AS(TensorView::bshd(nullptr, DType::bf16, int64_t(1) << 40, int64_t(1) << 20, 32, 128),
                       doctest::Contains("overflows"), Error);
  CHECK_THROWS_WITH_AS(TensorView::bhsd(nullptr, DType::bf16, -1, 4, 4, 4), doctest::Contains("negative"), Error);
}

TEST_CASE("errors: a view running past the end of the address space; references given bad views or tables") {
  Setup s;
  // 2^46 elements per dimension are allowed, but not a last byte past 2^64: the pointer is near the top.
  TensorView high = s.q.view;
  high.data = reinterpret_cast<void*>(~uintptr_t(0) - 1023);  // aligned; 512 bf16 fit before the wrap
  CHECK_REJECTS(s, apply_rope(high, nullptr, s.pos, s.table.view(), s.opt), "address space");
  // The fp64 references check their inputs like the ops (sizes, strides, overflow) before indexing.
  const auto table = ReferenceTable::exact(64, 64, 10000.0);
  TensorView twice = s.q.view;
  twice.stride_seq = 8;  // tokens reaching the same elements
  CHECK_THROWS_WITH_AS(reference_rope(twice, s.pos, table, RopeStyle::neox, 64), doctest::Contains("same elements"), Error);
  CHECK_THROWS_WITH_AS(reference_rope(s.q.view, s.pos, table, RopeStyle::neox, 66), doctest::Contains("rotary_dim"), Error);
  ReferenceResult ref = reference_rope(s.q.view, s.pos, table, RopeStyle::neox, 64);
  CHECK_THROWS_WITH_AS(compare_to_reference(twice, ref), doctest::Contains("same elements"), Error);
  ReferenceTable cut = table;
  cut.sin.pop_back();
  CHECK_THROWS_WITH_AS(reference_rope(s.q.view, s.pos, cut, RopeStyle::neox, 64), doctest::Contains("table"), Error);
  CosSinTable huge = s.table.view();
  huge.max_position = int64_t(1) << 56;  // would size the copy past memory
  CHECK_THROWS_WITH_AS(ReferenceTable::from(huge), doctest::Contains("out of range"), Error);
  huge.cos = nullptr;
  CHECK_THROWS_WITH_AS(ReferenceTable::from(huge), doctest::Contains("null"), Error);
}

TEST_CASE("errors: varlen positions (cu_seqlens) are checked before anything runs") {
  Setup s;
  const int64_t tokens = 8;
  HostTensor q(Layout::bshd, DType::bf16, 1, tokens, 8, 64), k(Layout::bshd, DType::bf16, 1, tokens, 2, 64);
  std::mt19937_64 rng(5);
  q.fill_random(rng), k.fill_random(rng);
  const auto q0 = q.bytes, k0 = k.bytes;
  auto run = [&](const std::vector<int32_t>& cu, const std::vector<int32_t>& starts, int64_t offset = 0) {
    const auto p = Positions::varlen(cu.data(), DType::i32, int64_t(cu.size()) - 1, starts.empty() ? nullptr : starts.data(), offset);
    apply_rope(q.view, &k.view, p, s.table.view(), s.opt);
  };
  auto rejects = [&](auto&& call, const char* words) {
    CHECK_THROWS_WITH_AS(call(), doctest::Contains(words), Error);
    CHECK(q.bytes == q0);
    CHECK(k.bytes == k0);
  };
  rejects([&] { run({1, 4, 8}, {}); }, "cu_seqlens[0] is 1");
  rejects([&] { run({0, 5, 4, 8}, {}); }, "decreases at 2");
  rejects([&] { run({0, 4, 7}, {}); }, "q holds 8 tokens");
  rejects([&] { run({0, 4, 8}, {3, 62}); }, "sequence 1 (start 62, 4 tokens)");
  rejects([&] { run({0, 4, 8}, {}, 64); }, "offset 64");
  rejects([&] { run({0}, {}); }, "num_seqs 0");
  rejects([&] { apply_rope(s.q.view, nullptr, Positions::varlen(s.ids.data(), DType::i32, 1), s.table.view(), s.opt); },
          "[1, total_tokens");
  Positions both = Positions::varlen(s.ids.data(), DType::i32, 1);
  both.ids = s.ids.data();
  rejects([&] { apply_rope(q.view, &k.view, both, s.table.view(), s.opt); }, "both ids and cu_seqlens");
  run({0, 3, 3, 8}, {5, 0, 50});  // valid, with an empty sequence: runs
  CHECK(q.bytes != q0);
}
