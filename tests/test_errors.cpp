// Every bad input gets a ropejit::Error that names the problem, and nothing is written.
#include <doctest/doctest.h>

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
  { Setup s; s.q.view.stride_head = 32; CHECK_REJECTS(s, s.run(), "heads would overlap"); }
  { Setup s; s.opt.q_out = s.q_out.view; s.opt.q_out->heads = 4; s.opt.k_out = s.k_out.view; CHECK_REJECTS(s, s.run(), "q_out: shape"); }
  { Setup s; s.opt.q_out = s.q_out.view; CHECK_REJECTS(s, s.run(), "k_out: missing"); }
  { Setup s; s.opt.k_out = s.k_out.view; CHECK_REJECTS(s, s.run(), "q_out: missing"); }
  { Setup s; s.opt.q_out = s.q.view; s.opt.k_out = s.k_out.view; CHECK_REJECTS(s, s.run(), "q_out overlaps q"); }
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
  { Setup s; s.pos = Positions::from_ids(nullptr, DType::i32); s.pos.offset = 0; /* null ids = offset mode */ s.run(); }
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
