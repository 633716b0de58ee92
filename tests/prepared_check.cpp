// Prepared calls (PreparedCall) on a backend: each launch with new data equals, bit for bit, apply_rope
// (or apply_qk_norm_rope) on that data, which matches the fp64 reference; bad data is refused and
// writes nothing.
#include <doctest/doctest.h>

#include <cstring>
#include <limits>

#include "support.hpp"

namespace ropejit::test {

namespace {

constexpr int64_t T = 7, HQ = 4, HK = 2, HV = 2, D = 64, ROW = (HQ + HK + HV) * D;

// A fused QKV buffer [T, (HQ + HK + HV) * D] in bf16, random, and its q and k views.
struct Qkv {
  std::vector<uint16_t> host;
  void* data = nullptr;
  Qkv(Placement& placed, std::mt19937_64& rng) : host(size_t(T * ROW)) {
    std::uniform_real_distribution<float> u(-2, 2);
    for (auto& x : host) x = float_to_bf16(u(rng));
    data = placed.place(host.data(), host.size() * 2);
  }
  static TensorView q_at(void* p) {
    return TensorView{p, DType::bf16, 1, T, HQ, D, T * ROW, ROW, D};
  }
  static TensorView k_at(void* p) {
    return TensorView{static_cast<uint16_t*>(p) + HQ * D, DType::bf16, 1, T, HK, D, T * ROW, ROW, D};
  }
  TensorView q() const { return q_at(data); }
  TensorView k() const { return k_at(data); }
};

std::vector<uint8_t> fetch(Placement& placed, const void* p, size_t bytes, const void* host) {
  std::vector<uint8_t> out(bytes);
  std::memcpy(out.data(), host, bytes);  // the host backend's data is the host copy itself
  placed.fetch(p, out.data(), bytes);
  return out;
}

}  // namespace

int check_prepared_calls(Backend backend) {
  std::mt19937_64 rng(777);
  Placement placed(backend);
  RopeTable table(backend, 300, D, 10000.0), host_table(Backend::host, 300, D, 10000.0);
  const auto ref_table = ReferenceTable::from(host_table.view());
  RopeOptions opt;
  opt.backend = backend;
  int launches = 0;

  SUBCASE("in place, q and k views of one fused QKV buffer, ids") {
    std::vector<int64_t> ids_a(T), ids_b(T);
    for (auto& p : ids_a) p = int64_t(rng() % 300);
    for (auto& p : ids_b) p = int64_t(rng() % 300);
    const void* pa = placed.place(ids_a.data(), T * 8);
    const void* pb = placed.place(ids_b.data(), T * 8);
    Qkv first(placed, rng);
    auto q0 = first.q(), k0 = first.k();
    const PreparedCall call = prepare_rope(q0, &k0, Positions::from_ids(pa, DType::i64), table.view(), opt);
    for (int step = 0; step < 3; ++step) {
      Qkv data(placed, rng), twin(placed, rng);
      twin.host = data.host;
      twin.data = placed.place(twin.host.data(), twin.host.size() * 2);
      const void* ids = step % 2 ? pb : pa;
      const auto& host_ids = step % 2 ? ids_b : ids_a;
      const std::vector<uint16_t> in = data.host;  // before the host backend rotates it in place
      call.launch(RopeData{data.data, Qkv::k_at(data.data).data, nullptr, nullptr, Positions::from_ids(ids, DType::i64)});
      auto tq = twin.q(), tk = twin.k();
      apply_rope(tq, &tk, Positions::from_ids(ids, DType::i64), table.view(), opt);
      const auto got = fetch(placed, data.data, data.host.size() * 2, data.host.data());
      CHECK(got == fetch(placed, twin.data, twin.host.size() * 2, twin.host.data()));
      std::vector<uint16_t> out(got.size() / 2);
      std::memcpy(out.data(), got.data(), got.size());
      const Positions host_pos = Positions::from_ids(host_ids.data(), DType::i64);
      auto in_q = Qkv::q_at(const_cast<uint16_t*>(in.data())), in_k = Qkv::k_at(const_cast<uint16_t*>(in.data()));
      const auto cq = compare_to_reference(Qkv::q_at(out.data()), reference_rope(in_q, host_pos, ref_table, RopeStyle::neox, D));
      CHECK_MESSAGE(cq.ok(), cq.first_mismatch);
      const auto ck = compare_to_reference(Qkv::k_at(out.data()), reference_rope(in_k, host_pos, ref_table, RopeStyle::neox, D));
      CHECK_MESSAGE(ck.ok(), ck.first_mismatch);
      for (int64_t t = 0; t < T; ++t)  // v untouched
        CHECK(std::memcmp(out.data() + t * ROW + (HQ + HK) * D, in.data() + t * ROW + (HQ + HK) * D, HV * D * 2) == 0);
      ++launches;
    }
  }

  SUBCASE("out of place, an offset that changes, f32 outputs; then bad data writes nothing") {
    std::vector<uint16_t> q(size_t(T * HQ * D)), k(size_t(T * HK * D));
    std::uniform_real_distribution<float> u(-2, 2);
    for (auto& x : q) x = float_to_bf16(u(rng));
    for (auto& x : k) x = float_to_bf16(u(rng));
    std::vector<float> qo(q.size(), std::numeric_limits<float>::quiet_NaN()), ko(k.size(), qo[0]);
    void* dq = placed.place(q.data(), q.size() * 2);
    void* dk = placed.place(k.data(), k.size() * 2);
    void* dqo = placed.place(qo.data(), qo.size() * 4);
    void* dko = placed.place(ko.data(), ko.size() * 4);
    auto qv = TensorView::bshd(dq, DType::bf16, 1, T, HQ, D), kv = TensorView::bshd(dk, DType::bf16, 1, T, HK, D);
    RopeOptions o = opt;
    o.q_out = TensorView::bshd(dqo, DType::f32, 1, T, HQ, D);
    o.k_out = TensorView::bshd(dko, DType::f32, 1, T, HK, D);
    const PreparedCall call = prepare_rope(qv, &kv, Positions::contiguous(3), table.view(), o);
    CHECK(call.spec_key().find(".hq4.hk2.") != std::string::npos);
    CHECK(call.config().vector_width >= 1);
    for (int64_t offset : {int64_t(0), int64_t(250), 300 - T}) {
      call.launch(RopeData{dq, dk, dqo, dko, Positions::contiguous(offset)});
      const auto got_q = fetch(placed, dqo, qo.size() * 4, qo.data());
      const auto got_k = fetch(placed, dko, ko.size() * 4, ko.data());
      std::vector<float> fq(qo.size()), fk(ko.size());
      std::memcpy(fq.data(), got_q.data(), got_q.size());
      std::memcpy(fk.data(), got_k.data(), got_k.size());
      RopeOptions ro;
      ro.q_out = TensorView::bshd(fq.data(), DType::f32, 1, T, HQ, D);
      const auto hq = TensorView::bshd(q.data(), DType::bf16, 1, T, HQ, D);
      const auto hk = TensorView::bshd(k.data(), DType::bf16, 1, T, HK, D);
      auto cq = compare_to_reference(*ro.q_out, reference_rope(hq, Positions::contiguous(offset), ref_table, ro));
      CHECK_MESSAGE(cq.ok(), cq.first_mismatch);
      ro.q_out = TensorView::bshd(fk.data(), DType::f32, 1, T, HK, D);
      auto ck = compare_to_reference(*ro.q_out, reference_rope(hk, Positions::contiguous(offset), ref_table, ro));
      CHECK_MESSAGE(ck.ok(), ck.first_mismatch);
      ++launches;
    }
    // Bad data: each refused, naming the problem; the outputs keep the last launch's values.
    const auto before_q = fetch(placed, dqo, qo.size() * 4, qo.data());
    const std::vector<int64_t> ids(T, 1);
    const void* dids = placed.place(ids.data(), T * 8);
    auto refused = [&](const RopeData& d, const char* needle) {
      try {
        call.launch(d);
        FAIL("accepted: " << needle);
      } catch (const Error& e) {
        CHECK_MESSAGE(std::string(e.what()).find(needle) != std::string::npos, e.what());
      }
      CHECK(fetch(placed, dqo, qo.size() * 4, qo.data()) == before_q);
    };
    refused(RopeData{dq, dk, dqo, dko, Positions::contiguous(300 - T + 1)}, "runs past");
    refused(RopeData{dq, dk, dqo, dko, Positions::contiguous(-1)}, "negative");
    refused(RopeData{nullptr, dk, dqo, dko, Positions::contiguous(0)}, "q: null");
    refused(RopeData{dq, nullptr, dqo, dko, Positions::contiguous(0)}, "k: null");
    refused(RopeData{dq, dk, nullptr, dko, Positions::contiguous(0)}, "q_out: null");
    refused(RopeData{static_cast<char*>(dq) + 2, dk, dqo, dko, Positions::contiguous(0)}, "not aligned");
    refused(RopeData{dq, dk, dqo, dko, Positions::from_ids(dids, DType::i64)}, "not of the kind");
    refused(RopeData{dq, dk, dq, dko, Positions::contiguous(0)}, "share elements");  // q_out over q
    refused(RopeData{dq, dk, dko, dko, Positions::contiguous(0)}, "share elements");  // q_out over k_out
    // q alone prepared: k refused.
    RopeOptions oq = opt;
    oq.q_out = o.q_out;
    const PreparedCall q_only = prepare_rope(qv, nullptr, Positions::contiguous(0), table.view(), oq);
    CHECK_THROWS_WITH_AS(q_only.launch(RopeData{dq, dk, dqo, nullptr, Positions::contiguous(0)}),
                         doctest::Contains("prepared without it"), Error);
    CHECK_THROWS_AS(PreparedCall().launch(RopeData{}), Error);
    CHECK_FALSE(PreparedCall());
    // An empty step (no tokens): prepared, and each launch is a no-op.
    auto empty = TensorView::bshd(dq, DType::bf16, 1, 0, HQ, D);
    const PreparedCall none = prepare_rope(empty, nullptr, Positions::contiguous(0), table.view(), opt);
    none.launch(RopeData{dq, nullptr, nullptr, nullptr, Positions::contiguous(0)});
  }

  SUBCASE("QK-norm + RoPE prepared, int32 ids") {
    std::vector<float> wq(D), wk(D);
    std::uniform_real_distribution<float> u(0.5f, 1.5f);
    for (auto& w : wq) w = u(rng);
    for (auto& w : wk) w = u(rng);
    QkNorm norm{placed.place(wq.data(), D * 4), placed.place(wk.data(), D * 4), DType::f32, 1e-6, false};
    std::vector<int32_t> ids(T);
    for (auto& p : ids) p = int32_t(rng() % 300);
    const void* dids = placed.place(ids.data(), T * 4);
    Qkv first(placed, rng);
    auto q0 = first.q(), k0 = first.k();
    const PreparedCall call =
        prepare_qk_norm_rope(q0, &k0, Positions::from_ids(dids, DType::i32), table.view(), norm, opt);
    for (int step = 0; step < 2; ++step) {
      Qkv data(placed, rng), twin(placed, rng);
      twin.host = data.host;
      twin.data = placed.place(twin.host.data(), twin.host.size() * 2);
      call.launch(RopeData{data.data, Qkv::k_at(data.data).data, nullptr, nullptr, Positions::from_ids(dids, DType::i32)});
      auto tq = twin.q(), tk = twin.k();
      apply_qk_norm_rope(tq, &tk, Positions::from_ids(dids, DType::i32), table.view(), norm, opt);
      CHECK(fetch(placed, data.data, data.host.size() * 2, data.host.data()) ==
            fetch(placed, twin.data, twin.host.size() * 2, twin.host.data()));
      ++launches;
    }
  }
  return launches;
}

}  // namespace ropejit::test
