// The same checks on the GPU: the core matrix against the fp64 reference, the GPU's bits against the
// host backend's, the in-memory cache, graph capture, device-side position guards and driver errors.
// Where there is no GPU every case here is skipped, and a line says why.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "internal.hpp"
#include "jit/target.hpp"
#include "ropejit/ropejit.hpp"
#include "runtime/context.hpp"
#include "runtime/disk_cache.hpp"
#include "runtime/driver_api.hpp"
#include "runtime/handle.hpp"
#include "runtime/module.hpp"
#include "support.hpp"

#include <cstring>
#include <memory>
#include <random>
#include <thread>
#include <atomic>
#include <map>
#include <fmt/format.h>

using namespace ropejit;
using namespace ropejit::test;

namespace {

const DeviceInfo& gpu() {
  static const DeviceInfo info = device_info();
  return info;
}
bool no_gpu() { return !gpu().available; }

int gpu_count() {
  static const int n = [] {
    int count = 0;
    if (no_gpu() || runtime::driver().cuDeviceGetCount(&count) != CUDA_SUCCESS) return 0;
    return count;
  }();
  return n;
}

void check_case(const Case& c, uint64_t seed) { test::check_case(c, Backend::cuda, seed); }
void run_matrix(RopeStyle style, DType dtype) { check_matrix(style, dtype, Backend::cuda); }

}  // namespace

TEST_CASE("gpu matrix: neox f32" * doctest::skip(no_gpu())) { run_matrix(RopeStyle::neox, DType::f32); }
TEST_CASE("gpu matrix: neox f16" * doctest::skip(no_gpu())) { run_matrix(RopeStyle::neox, DType::f16); }
TEST_CASE("gpu matrix: neox bf16" * doctest::skip(no_gpu())) { run_matrix(RopeStyle::neox, DType::bf16); }
TEST_CASE("gpu matrix: gptj f32" * doctest::skip(no_gpu())) { run_matrix(RopeStyle::gptj, DType::f32); }
TEST_CASE("gpu matrix: gptj f16" * doctest::skip(no_gpu())) { run_matrix(RopeStyle::gptj, DType::f16); }
TEST_CASE("gpu matrix: gptj bf16" * doctest::skip(no_gpu())) { run_matrix(RopeStyle::gptj, DType::bf16); }

TEST_CASE("gpu: other configs and padded strides" * doctest::skip(no_gpu())) {
  uint64_t seed = 5000;
  for (int width : {1, 2, 4, 8})
    for (int threads : {32, 64, 256})
      for (int unroll : {1, 3}) {
        Case c;
        c.style = seed % 2 ? RopeStyle::gptj : RopeStyle::neox;
        c.head_dim = 96;
        c.rotary_dim = 64;
        c.q_heads = 12;
        c.k_heads = 3;
        c.in_place = seed % 3 == 0;
        c.vector_width = width;
        c.threads = threads;
        c.unroll = unroll;
        c.streaming = width == 8 ? int(seed % 2) : -1;  // .cs accesses where they are 16 bytes
        c.layout = Layout::padded;
        check_case(c, seed++);
      }
}

TEST_CASE("gpu: bit-identical to the host backend: forward, inverse (RoPE's backward), exact angles, varlen" *
          doctest::skip(no_gpu())) {
  uint64_t seed = 9000;
  for (int variant : {0, 1, 2, 3})
    for (DType dt : {DType::bf16, DType::f16, DType::f32})
      for (RopeStyle style : {RopeStyle::neox, RopeStyle::gptj})
        for (bool in_place : {true, false}) {
          Case c;
          c.dtype = dt;
          c.style = style;
          c.in_place = in_place;
          c.rotary_dim = in_place ? 128 : 96;
          c.batch = 4;
          c.seq = 33;
          c.inverse = variant == 1;
          c.exact_angles = variant == 2;  // at positions near 2^31, theta 5e5: the phase wraps many times
          c.position_base = variant == 2 ? (int64_t(1) << 31) - 400 : 0;
          c.theta = variant == 2 ? 5e5 : 1e4;
          if (variant == 3) c.pos = Pos::varlen64, c.batch = 17, c.seq = 7;  // 17 sequences packed in one
          INFO(c.describe());
          auto g = run_case(c, Backend::cuda, seed);
          auto h = run_case(c, Backend::host, seed);
          CHECK(g.q.ok());
          CHECK(g.k.ok());
          CHECK(g.q_out_bytes == h.q_out_bytes);
          CHECK(g.k_out_bytes == h.k_out_bytes);
          ++seed;
        }
}

TEST_CASE("gpu: the rotations of real checkpoints against fp64 and bit-identical to the host: rotary_offset, "
          "outputs of another dtype, multimodal (sections, interleaved), hf_compat angles" * doctest::skip(no_gpu())) {
  uint64_t seed = 9500;
  for (int variant : {0, 1, 2, 3, 4, 5})
    for (DType dt : {DType::bf16, DType::f16, DType::f32})
      for (RopeStyle style : {RopeStyle::neox, RopeStyle::gptj}) {
        Case c;
        c.dtype = dt;
        c.style = style;
        c.batch = 4;
        c.seq = 33;
        if (variant == 0) c.head_dim = 192, c.rotary_dim = 64, c.rotary_offset = 128, c.in_place = seed % 2;
        if (variant == 1) c.in_place = false, c.out_dtype = dt == DType::f32 ? DType::bf16 : DType::f32, c.rotary_dim = 64;
        if (variant == 2 || variant == 3) {
          c.mrope_section = variant == 2 ? std::array<int, 3>{16, 24, 24} : std::array<int, 3>{24, 20, 20};
          c.mrope_interleaved = variant == 3;
          c.pos = seed % 2 ? Pos::ids32 : Pos::ids64;
          c.exact_angles = seed % 3 == 0;
        }
        if (variant >= 4) {  // hf_compat near 2^31, and exact with the offset and the other dtype together
          c.exact_angles = true;
          c.hf_compat = variant == 4;
          c.position_base = (int64_t(1) << 31) - 400;
          c.theta = 5e5;
          if (variant == 5) c.rotary_dim = 32, c.rotary_offset = 64, c.in_place = false, c.out_dtype = DType::f32;
          if (variant == 5 && dt == DType::f32) c.out_dtype = DType::f16;
        }
        INFO(c.describe());
        auto g = run_case(c, Backend::cuda, seed);
        auto h = run_case(c, Backend::host, seed);
        CHECK_MESSAGE(g.q.ok(), g.q.first_mismatch);
        CHECK_MESSAGE(g.k.ok(), g.k.first_mismatch);
        CHECK(g.gaps_untouched);
        CHECK(g.q_out_bytes == h.q_out_bytes);
        CHECK(g.k_out_bytes == h.k_out_bytes);
        ++seed;
      }
}

TEST_CASE("gpu: frequency sets chosen per sequence: each sequence bit-identical to its set alone on the host" *
          doctest::skip(no_gpu())) {
  CHECK(check_frequency_sets(Backend::cuda) == 2 * (4 + 3));
}

TEST_CASE("gpu: prepared calls: launches with new data match the op and fp64; bad data writes nothing" *
          doctest::skip(no_gpu())) {
  CHECK(check_prepared_calls(Backend::cuda) > 0);
}

TEST_CASE("gpu: fill_table makes a 1M-position table in milliseconds, bit-identical to the host backend" *
          doctest::skip(no_gpu())) {
  const auto theta = FrequencyTable::from_theta(Backend::host, 128, 500000.0);
  FrequencyTable dev(Backend::cuda, theta.inv_freq(), 1.0), host(Backend::host, theta.inv_freq(), 1.0);
  const int64_t n = int64_t(1) << 20, P = 64, checked = 100000;
  DeviceBuffer cos(size_t(n * P) * 4), sin(size_t(n * P) * 4);
  cos.fill(0xff), sin.fill(0xff);
  auto ms = time_gpu_ms([&] { fill_table(dev.view(), cos.data(), sin.data(), DType::f32, n, Backend::cuda); }, 1, 5);
  MESSAGE("fill_table: 2^20 positions x 64 pairs (f32 cos and sin, 512 MB) in " << ms[ms.size() / 2] << " ms (median of 5)");
  CHECK(ms[ms.size() / 2] < 50.0);
  std::vector<float> hc(size_t(checked * P)), hs(hc.size()), gc(hc.size()), gs(hc.size());
  std::vector<float> tail(static_cast<size_t>(P));
  fill_table(host.view(), hc.data(), hs.data(), DType::f32, checked, Backend::host);
  cos.download(gc.data(), gc.size() * 4), sin.download(gs.data(), gs.size() * 4);
  CHECK(std::memcmp(hc.data(), gc.data(), hc.size() * 4) == 0);
  CHECK(std::memcmp(hs.data(), gs.data(), hs.size() * 4) == 0);
  cos.download(tail.data(), size_t(P) * 4, size_t((n - 1) * P) * 4);  // the last row was written
  CHECK(std::none_of(tail.begin(), tail.end(), [](float v) { return std::isnan(v); }));
}

TEST_CASE("gpu: several GPUs: a spec used on device 0, then on device 1, is loaded for each and right on both" *
          doctest::skip(gpu_count() < 2)) {
  Case c;
  c.head_dim = c.rotary_dim = 56;  // a spec no other test uses
  c.q_heads = 6;
  c.k_heads = 2;
  check_case(c, 81);  // device 0 (this thread's context): built and loaded there
  const auto s0 = stats();
  int device_seen = -1;
  std::thread([&] {  // a thread with no current context: ensure_context(1) makes device 1's primary current
    runtime::ensure_context(1);
    CUdevice dev = -1;
    runtime::check(runtime::driver().cuCtxGetDevice(&dev), "cuCtxGetDevice");
    device_seen = int(dev);
    check_case(c, 82);  // device 1's buffers, table and kernel: a miss there and its own load
    check_case(c, 83);  // then a hit on device 1
  }).join();
  const auto s1 = stats();
  CHECK(device_seen == 1);
  CHECK(s1.memory_misses == s0.memory_misses + 1);
  CHECK(s1.modules_loaded == s0.modules_loaded + 1);
  CHECK(s1.memory_hits >= s0.memory_hits + 1);
  MESSAGE("device 1: " << s1.kernels_generated - s0.kernels_generated << " code generation(s), "
                       << s1.modules_loaded - s0.modules_loaded << " module load(s)");
  check_case(c, 84);  // back on device 0: its own module, still loaded
  CHECK(stats().modules_loaded == s1.modules_loaded);
  CHECK(stats().memory_hits == s1.memory_hits + 1);
  // Device 1 again, from another thread: its module was kept (a hit, no load).
  std::thread([&] {
    runtime::ensure_context(1);
    check_case(c, 85);
  }).join();
  CHECK(stats().modules_loaded == s1.modules_loaded);
}

TEST_CASE("gpu: the second call with the same spec does no code generation or load" * doctest::skip(no_gpu())) {
  Case c;
  c.head_dim = 40;
  c.rotary_dim = 40;
  c.q_heads = 5;
  c.k_heads = 5;
  auto s0 = stats();
  check_case(c, 1);
  auto s1 = stats();
  CHECK(s1.kernels_generated == s0.kernels_generated + 1);
  CHECK(s1.modules_loaded == s0.modules_loaded + 1);
  check_case(c, 2);
  auto s2 = stats();
  CHECK(s2.kernels_generated == s1.kernels_generated);
  CHECK(s2.modules_loaded == s1.modules_loaded);
  CHECK(s2.memory_hits == s1.memory_hits + 1);
  MESSAGE("codegen " << s1.last_codegen_ms << " ms, driver load " << s1.last_load_ms << " ms");
}

TEST_CASE("gpu: positions read on the device outside the table touch nothing" * doctest::skip(no_gpu())) {
  const int64_t D = 64, H = 4, S = 6;
  HostTensor q(Layout::bshd, DType::bf16, 1, S, H, D), out(Layout::bshd, DType::bf16, 1, S, H, D);
  std::mt19937_64 rng(5);
  q.fill_random(rng);
  out.poison();
  RopeTable table(Backend::cuda, 100, D);
  std::vector<int64_t> ids = {5, 100, -1, 99, int64_t(1) << 40, 0};
  DeviceBuffer dq(q.bytes.size()), dout(out.bytes.size()), dids(ids.size() * 8);
  dq.upload(q.bytes.data(), q.bytes.size());
  dout.upload(out.bytes.data(), out.bytes.size());
  dids.upload(ids.data(), ids.size() * 8);
  TensorView qv = q.view, ov = out.view;
  qv.data = dq.data();
  ov.data = dout.data();
  RopeOptions opt;
  opt.q_out = ov;
  apply_rope(qv, nullptr, Positions::from_ids(dids.data(), DType::i64), table.view(), opt);
  synchronize();
  std::vector<uint8_t> got(out.bytes.size());
  dout.download(got.data(), got.size());
  const size_t token_bytes = size_t(H * D * 2);
  for (size_t t = 0; t < ids.size(); ++t) {
    bool poisoned = std::all_of(got.begin() + long(t * token_bytes), got.begin() + long((t + 1) * token_bytes),
                                [](uint8_t b) { return b == 0xff; });
    bool in_range = ids[t] >= 0 && ids[t] < 100;
    INFO("token " << t << " position " << ids[t]);
    CHECK(poisoned == !in_range);
  }
}

TEST_CASE("gpu: nothing compiles under capture; after warm_up a graph of both ops replays new data in the same buffers" *
          doctest::skip(no_gpu())) {
  const auto& d = runtime::driver();
  REQUIRE(bool(d.cuGraphInstantiateWithFlags));
  REQUIRE(bool(d.cuGraphLaunch));
  // A decode-like step no other case uses: 8 sequences x 1 token, d64, 8 q / 2 k heads, positions
  // read from the device, RoPE out of place, then QK-norm + RoPE in place on its outputs.
  const int B = 8, D = 64, HQ = 8, HK = 2, P = 64;
  std::mt19937_64 rng(9);
  HostTensor q(Layout::bshd, DType::bf16, B, 1, HQ, D), k(Layout::bshd, DType::bf16, B, 1, HK, D);
  HostTensor qo = q, ko = k;
  std::vector<int64_t> ids(B);
  std::vector<float> wq(D), wk(D);
  DeviceBuffer dq(q.bytes.size()), dk(k.bytes.size()), dqo(qo.bytes.size()), dko(ko.bytes.size()), dids(B * 8),
      dwq(D * 4), dwk(D * 4);
  RopeTable table(Backend::cuda, P, D);
  CosSinTable host_table = table.view();
  host_table.cos = table.host_cos().data();
  host_table.sin = table.host_sin().data();
  auto device_view = [](const HostTensor& t, const DeviceBuffer& b) {
    TensorView v = t.view;
    v.data = b.data();
    return v;
  };
  const TensorView qv = device_view(q, dq), kv = device_view(k, dk), qov = device_view(qo, dqo), kov = device_view(ko, dko);
  RopeOptions out_of_place;
  out_of_place.q_out = qov, out_of_place.k_out = kov;
  const Positions pos = Positions::from_ids(dids.data(), DType::i64);
  const QkNorm norm{dwq.data(), dwk.data(), DType::f32, 1e-6, false};
  auto enqueue = [&](void* stream) {
    apply_rope(qv, &kv, pos, table.view(), out_of_place, stream);
    apply_qk_norm_rope(qov, &kov, pos, table.view(), norm, RopeOptions{}, stream);
  };

  CUstream stream = nullptr;
  runtime::check(d.cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
  // Not warmed up: the capture is refused, naming the way out, and nothing is generated.
  {
    auto s0 = stats();
    runtime::check(d.cuStreamBeginCapture(stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL), "cuStreamBeginCapture");
    CHECK_THROWS_WITH_AS(enqueue(stream), doctest::Contains("warm_up"), Error);
    CUgraph failed = nullptr;
    d.cuStreamEndCapture(stream, &failed);
    if (failed) d.cuGraphDestroy(failed);
    CHECK(stats().kernels_generated == s0.kernels_generated);
  }
  // Warmed up: the capture generates nothing, and each replay reads what the buffers hold then.
  warm_up(qv, &kv, pos, table.view(), out_of_place);
  warm_up(qov, &kov, pos, table.view(), norm, RopeOptions{});
  const auto warmed = stats();
  CUgraph graph = nullptr;
  runtime::check(d.cuStreamBeginCapture(stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL), "cuStreamBeginCapture");
  enqueue(stream);
  runtime::check(d.cuStreamEndCapture(stream, &graph), "cuStreamEndCapture");
  CHECK(stats().kernels_generated == warmed.kernels_generated);
  CHECK(stats().modules_loaded == warmed.modules_loaded);
  CUgraphExec exec = nullptr;
  runtime::check(d.cuGraphInstantiateWithFlags(&exec, graph, 0), "cuGraphInstantiateWithFlags");
  for (int round = 0; round < 3; ++round) {
    INFO("replay " << round);
    q.fill_random(rng), k.fill_random(rng);
    for (auto& i : ids) i = int64_t(rng() % P);
    for (auto* w : {&wq, &wk})
      for (auto& x : *w) x = float(std::uniform_real_distribution<double>(-1.5, 1.5)(rng));
    dq.upload(q.bytes.data(), q.bytes.size()), dk.upload(k.bytes.data(), k.bytes.size());
    dids.upload(ids.data(), ids.size() * 8), dwq.upload(wq.data(), D * 4), dwk.upload(wk.data(), D * 4);
    dqo.fill(0xff), dko.fill(0xff);
    runtime::check(d.cuGraphLaunch(exec, stream), "cuGraphLaunch");
    runtime::check(d.cuStreamSynchronize(stream), "cuStreamSynchronize");
    std::vector<uint8_t> got_q(qo.bytes.size()), got_k(ko.bytes.size());
    dqo.download(got_q.data(), got_q.size()), dko.download(got_k.data(), got_k.size());
    // The same two steps on the host backend (bit-identical to the GPU's kernels, checked above).
    HostTensor hq = qo, hk = ko;
    RopeOptions host_opt;
    host_opt.backend = Backend::host;
    host_opt.q_out = hq.view, host_opt.k_out = hk.view;
    const Positions host_pos = Positions::from_ids(ids.data(), DType::i64);
    apply_rope(q.view, &k.view, host_pos, host_table, host_opt);
    RopeOptions host_in_place;
    host_in_place.backend = Backend::host;
    apply_qk_norm_rope(hq.view, &hk.view, host_pos, host_table, QkNorm{wq.data(), wk.data(), DType::f32, 1e-6, false},
                       host_in_place);
    CHECK(got_q == hq.bytes);
    CHECK(got_k == hk.bytes);
  }
  d.cuGraphExecDestroy(exec);
  d.cuGraphDestroy(graph);
  d.cuStreamDestroy(stream);
}

TEST_CASE("gpu: 8 threads on 8 streams, 6 specs of both ops, first calls racing, 2 threads rewriting the tuning file: "
          "each kernel made once, results exact" *
          doctest::skip(no_gpu())) {
  const auto& d = runtime::driver();
  struct Spec {
    int head_dim, q_heads, k_heads;
    DType dtype;
    bool norm;
  };
  // Shapes no other case uses, so the first calls race here.
  const std::vector<Spec> specs = {{72, 6, 2, DType::bf16, false}, {72, 6, 2, DType::f16, false},
                                   {40, 5, 1, DType::bf16, false}, {72, 6, 2, DType::bf16, true},
                                   {40, 5, 1, DType::f32, true},   {104, 3, 3, DType::bf16, true}};
  const int kThreads = 8, kRounds = 3;
  std::map<int, std::pair<RopeTable, RopeTable>> tables;  // head_dim -> (cuda, host), made before the threads
  for (const Spec& sp : specs)
    if (!tables.count(sp.head_dim))
      tables.emplace(sp.head_dim, std::pair<RopeTable, RopeTable>{RopeTable(Backend::cuda, 64, sp.head_dim),
                                                                  RopeTable(Backend::host, 64, sp.head_dim)});
  std::atomic<int> mismatches{0}, errors{0};
  std::vector<std::string> messages(kThreads + 2);  // the op threads', then the 2 tuners'
  auto one_thread = [&](int t) {
    try {
      runtime::ensure_context(0);  // a new thread has no current context: device 0's primary one
      CUstream stream = nullptr;
      runtime::check(d.cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
      std::mt19937_64 rng(1000 + uint64_t(t));
      for (int round = 0; round < kRounds; ++round)
        for (size_t i = 0; i < specs.size(); ++i) {
          const Spec& sp = specs[(i + size_t(t)) % specs.size()];  // each thread starts elsewhere
          HostTensor q(Layout::bshd, sp.dtype, 3, 7, sp.q_heads, sp.head_dim);
          HostTensor k(Layout::bshd, sp.dtype, 3, 7, sp.k_heads, sp.head_dim);
          q.fill_random(rng), k.fill_random(rng);
          std::vector<float> w(size_t(sp.head_dim));
          for (auto& x : w) x = float(std::uniform_real_distribution<double>(0.5, 1.5)(rng));
          DeviceBuffer dq(q.bytes.size()), dk(k.bytes.size()), dw(w.size() * 4);
          dq.upload(q.bytes.data(), q.bytes.size()), dk.upload(k.bytes.data(), k.bytes.size());
          dw.upload(w.data(), w.size() * 4);
          TensorView qv = q.view, kv = k.view;
          qv.data = dq.data(), kv.data = dk.data();
          const CosSinTable dt = tables.at(sp.head_dim).first.view(), ht = tables.at(sp.head_dim).second.view();
          const Positions pos = Positions::contiguous(int64_t(rng() % 58));  // 7 tokens within 64
          RopeOptions host_opt;
          host_opt.backend = Backend::host;
          if (sp.norm) {
            apply_qk_norm_rope(qv, &kv, pos, dt, QkNorm{dw.data(), dw.data()}, RopeOptions{}, stream);
            apply_qk_norm_rope(q.view, &k.view, pos, ht, QkNorm{w.data(), w.data()}, host_opt);
          } else {
            apply_rope(qv, &kv, pos, dt, RopeOptions{}, stream);
            apply_rope(q.view, &k.view, pos, ht, host_opt);
          }
          runtime::check(d.cuStreamSynchronize(stream), "cuStreamSynchronize");
          std::vector<uint8_t> gq(q.bytes.size()), gk(k.bytes.size());
          dq.download(gq.data(), gq.size()), dk.download(gk.data(), gk.size());
          if (gq != q.bytes || gk != k.bytes) ++mismatches;
        }
      d.cuStreamDestroy(stream);
    } catch (const std::exception& e) {
      messages[size_t(t)] = e.what();
      ++errors;
    }
  };
  // Two threads save records into the tuning file and read it back while the ops run (and reload it
  // after each save). The records hold the heuristic's configs, so kernels and bits stay as checked.
  const auto tuning = std::filesystem::temp_directory_path() / fmt::format("ropejit-gpu-tuning-{}.json", ::getpid());
  std::filesystem::remove(tuning);
  ::setenv("ROPEJIT_TUNING_FILE", tuning.c_str(), 1);
  std::vector<TuningRecord> records;
  for (const Spec& sp : specs) {
    TensorView q = TensorView::bshd(reinterpret_cast<void*>(uintptr_t(256)), sp.dtype, 3, 7, sp.q_heads, sp.head_dim);
    TensorView k = TensorView::bshd(reinterpret_cast<void*>(uintptr_t(1 << 20)), sp.dtype, 3, 7, sp.k_heads, sp.head_dim);
    const CosSinTable& table = tables.at(sp.head_dim).first.view();
    const float w[1] = {1};
    const KernelChoice choice = sp.norm ? describe_qk_norm_rope(q, &k, Positions::contiguous(0), table, QkNorm{w, w}, {})
                                        : describe_kernel(q, &k, Positions::contiguous(0), table, {});
    records.push_back({gpu().name, sp.norm ? "qk_norm_rope" : "rope", choice.spec_key, token_bucket(21),
                       config_values(choice.config), 1.0});
  }
  std::atomic<bool> ops_done{false};
  std::atomic<int> saves{0};
  auto tuner_thread = [&](int t) {
    try {
      while (!ops_done.load()) {
        save_tuning({records[size_t(saves++ + t) % records.size()]}, tuning.string());
        if (load_tuning(tuning.string()).empty()) ++errors;
      }
    } catch (const std::exception& e) {
      messages[size_t(kThreads + t)] = std::string("tuner: ") + e.what();
      ++errors;
    }
  };
  const auto before = stats();
  std::vector<std::thread> threads, tuners;
  for (int t = 0; t < 2; ++t) tuners.emplace_back(tuner_thread, t);
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(one_thread, t);
  for (auto& th : threads) th.join();
  ops_done = true;
  for (auto& th : tuners) th.join();
  ::unsetenv("ROPEJIT_TUNING_FILE");
  CHECK(load_tuning(tuning.string()).size() == records.size());
  std::filesystem::remove(tuning);
  std::filesystem::remove(tuning.string() + ".lock");
  MESSAGE(saves.load() << " tuning-file saves during the run");
  for (const auto& m : messages)
    if (!m.empty()) MESSAGE(m);
  CHECK(errors.load() == 0);
  CHECK(mismatches.load() == 0);
  // One kernel per spec on each backend, however many threads asked for it first.
  CHECK(stats().kernels_generated - before.kernels_generated <= 2 * specs.size());
  CHECK(stats().modules_loaded - before.modules_loaded <= specs.size());
}

TEST_CASE("gpu: PTX the driver rejects gives its log; unsupported PTX ISA is said plainly" * doctest::skip(no_gpu())) {
  runtime::ensure_context(0);
  CHECK_THROWS_WITH_AS(runtime::Module::load(".version 8.5\n.target sm_90\n.address_size 64\n.visible .entry f() { bogus; }\n", "bad.ptx", "f"),
                       doctest::Contains("loading bad.ptx failed"), Error);
  rope::RopeSpec s;
  auto ptx = test::rope_ptx(s, rope::heuristic_config(s, 8), jit::current_ptx_target());
  auto at = ptx.find(".version ");
  REQUIRE(at != std::string::npos);
  ptx.replace(at, ptx.find('\n', at) - at, ".version 99.9");
  CHECK_THROWS_WITH_AS(runtime::Module::load(ptx, "future.ptx", rope::rope_kernel_def(s, rope::heuristic_config(s, 8)).symbol()), doctest::Contains("PTX"), Error);
  try {
    runtime::Module::load(ptx, "future.ptx", rope::rope_kernel_def(s, rope::heuristic_config(s, 8)).symbol());
  } catch (const Error& e) {
    MESSAGE("driver says: " << std::string(e.what()));
  }
}

TEST_CASE("gpu: element offsets past 2^31 are indexed in 64 bits" * doctest::skip(no_gpu())) {
  const int64_t B = 2, S = 4, H = 2, D = 64;
  const int64_t stride_b = (int64_t(1) << 31) + 256;  // batch 1 starts past 2^31 elements (4 GiB of bf16)
  const size_t block = size_t(S * H * D);
  DeviceBuffer buf(size_t(stride_b + int64_t(block)) * 2);
  HostTensor dense(Layout::bshd, DType::bf16, B, S, H, D);
  std::mt19937_64 rng(17);
  dense.fill_random(rng);
  for (int64_t b = 0; b < B; ++b) buf.upload(dense.bytes.data() + size_t(b) * block * 2, block * 2, size_t(b * stride_b) * 2);
  TensorView v{buf.data(), DType::bf16, B, S, H, D, stride_b, H * D, D};
  RopeTable table(Backend::cuda, 64, D);
  RopeOptions opt;
  apply_rope(v, nullptr, Positions::contiguous(9), table.view(), opt);
  synchronize();
  HostTensor out = dense;
  for (int64_t b = 0; b < B; ++b) buf.download(out.bytes.data() + size_t(b) * block * 2, block * 2, size_t(b * stride_b) * 2);
  CosSinTable host_table = table.view();
  host_table.cos = table.host_cos().data();
  host_table.sin = table.host_sin().data();
  auto ref = reference_rope(dense.view, Positions::contiguous(9), ReferenceTable::from(host_table), RopeStyle::neox, D);
  auto cmp = compare_to_reference(out.view, ref);
  CHECK_MESSAGE(cmp.ok(), cmp.mismatches << " wrong, first " << cmp.first_mismatch);
}

TEST_CASE("gpu: the heuristic streams calls up to ~12x the L2 and not beyond" * doctest::skip(no_gpu())) {
  const int64_t D = 128, HQ = 32, HK = 8;
  DeviceBuffer buf(size_t(65536) * (HQ + HK) * D * 2);
  auto* base = static_cast<uint16_t*>(buf.data());
  RopeTable table(Backend::cuda, 65536, D);
  RopeOptions opt;
  auto choice = [&](int64_t tokens) {
    auto q = TensorView::bshd(base, DType::bf16, 1, tokens, HQ, D);
    auto k = TensorView::bshd(base + tokens * HQ * D, DType::bf16, 1, tokens, HK, D);
    return describe_kernel(q, &k, Positions::contiguous(0), table.view(), opt);
  };
  auto mid = choice(16384), big = choice(65536);
  INFO(mid.config.key() << " / " << big.config.key() << ", L2 " << runtime::current_device_props().l2_bytes);
  CHECK(mid.source == "heuristic");
  CHECK(mid.config.streaming == 1);
  CHECK(big.config.streaming == 0);
}

namespace {
std::string g_self;  // this binary, for child processes

// The child process of the disk-cache test: one run of a spec no other test uses.
Case cache_child_case() {
  Case c;
  c.dtype = DType::f16;
  c.head_dim = 48;
  c.rotary_dim = 48;
  c.q_heads = 6;
  c.k_heads = 2;
  return c;
}

int cache_child() {
  auto r = run_case(cache_child_case(), Backend::cuda, 5);
  auto s = stats();
  std::printf("CHILD gen=%llu cubin_hit=%llu ptx_hit=%llu ok=%d\n", (unsigned long long)s.kernels_generated,
              (unsigned long long)s.disk_cubin_hits, (unsigned long long)s.disk_ptx_hits,
              int(r.q.ok() && r.k.ok() && r.gaps_untouched));
  return 0;
}

struct ChildStats {
  int gen = -1, cubin_hit = -1, ptx_hit = -1, ok = 0;
};
ChildStats run_child() {
  ChildStats c;
  std::string cmd = "'" + g_self + "' --cache-child 2>&1";
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char line[512];
    while (fgets(line, sizeof line, p))
      if (std::sscanf(line, "CHILD gen=%d cubin_hit=%d ptx_hit=%d ok=%d", &c.gen, &c.cubin_hit, &c.ptx_hit, &c.ok) == 4) break;
    pclose(p);
  }
  return c;
}
}  // namespace

TEST_CASE("gpu: the disk cache serves later processes (cubin, then PTX), a corrupted entry is rebuilt" *
          doctest::skip(no_gpu())) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("ropejit-gpu-cache-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  ::unsetenv("ROPEJIT_CACHE");
  ::setenv("ROPEJIT_CACHE_DIR", dir.c_str(), 1);
  auto first = run_child();
  CHECK(first.ok == 1);
  CHECK(first.gen == 1);
  CHECK(first.cubin_hit == 0);
  auto second = run_child();
  CHECK(second.ok == 1);
  CHECK(second.gen == 0);  // no code generation...
  CHECK(second.cubin_hit == 1);  // ...and no PTX JIT: the cached cubin
  fs::path entry;
  for (const auto& f : fs::recursive_directory_iterator(dir))
    if (f.path().extension() == ".rjk") entry = f.path();
  REQUIRE(!entry.empty());
  {
    std::fstream f(entry, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x5a');
  }
  auto third = run_child();
  CHECK(third.ok == 1);
  CHECK(third.gen == 1);  // the corrupted entry was ignored and rebuilt
  auto fourth = run_child();
  CHECK(fourth.cubin_hit == 1);
  CHECK(fourth.gen == 0);
  // Only PTX on disk (as from another driver): the driver JITs it, still no code generation.
  std::string key = entry.parent_path().filename().string();
  runtime::DiskCache cache(dir.string());
  auto ptx = cache.load_ptx(key);
  REQUIRE(ptx.has_value());
  fs::remove(entry);
  cache.store(key, 0, runtime::CacheEntry{*ptx, ""});
  auto fifth = run_child();
  CHECK(fifth.ok == 1);
  CHECK(fifth.gen == 0);
  CHECK(fifth.ptx_hit == 1);
  ::unsetenv("ROPEJIT_CACHE_DIR");
  ::setenv("ROPEJIT_CACHE", "off", 1);
  fs::remove_all(dir);
}

TEST_CASE("gpu: a precompiled bundle serves a spec with no code generation" * doctest::skip(no_gpu())) {
  namespace fs = std::filesystem;
  Case c;
  c.head_dim = 56;  // a spec no other test uses
  c.rotary_dim = 56;
  c.q_heads = 3;
  c.k_heads = 1;
  RopeSpec spec;
  spec.head_dim = 56;
  spec.rotary_dim = 56;
  spec.q_heads = 3;
  spec.k_heads = 1;
  spec.dtype = c.dtype;
  fs::path dir = fs::temp_directory_path() / ("ropejit-bundle-" + std::to_string(::getpid()));
  auto kernels = precompile(spec, {gpu().sm});
  write_bundle(dir.string(), kernels);
  size_t before_count = bundled_kernel_count();
  load_bundle(dir.string());
  CHECK(bundled_kernel_count() == before_count + kernels.size());
  auto s0 = stats();
  check_case(c, 3);
  auto s1 = stats();
  CHECK(s1.kernels_generated == s0.kernels_generated);
  CHECK(s1.bundle_hits == s0.bundle_hits + 1);
  fs::remove_all(dir);
  CHECK_THROWS_WITH_AS(load_bundle(dir.string()), doctest::Contains("no manifest.json"), Error);
}

namespace {

// One fused QK-norm + RoPE call on a backend from the same seeded data: the output bytes of q and k.
struct FusedCase {
  int head_dim = 128, rotary_dim = 128, q_heads = 32, k_heads = 8;
  DType dtype = DType::bf16, weight_dtype = DType::f32;
  RopeStyle style = RopeStyle::neox;
  bool in_place = true, one_plus = false, ids = false;
  int64_t batch = 3, seq = 17;
  int rotary_offset = 0;
  std::optional<DType> out_dtype;  // out of place: outputs of another dtype
  bool mrope = false;              // multimodal: sections 16/24/24 of 64 pairs, three ids per token
};

struct FusedResult {
  std::vector<uint8_t> q, k;
  Comparison cq, ck;
};

FusedResult run_fused(const FusedCase& f, Backend backend, uint64_t seed) {
  std::mt19937_64 rng(seed);
  HostTensor q(Layout::bshd, f.dtype, f.batch, f.seq, f.q_heads, f.head_dim), k(Layout::bshd, f.dtype, f.batch, f.seq, f.k_heads, f.head_dim);
  q.fill_random(rng);
  k.fill_random(rng);
  std::vector<uint8_t> wq(size_t(f.head_dim) * 4), wk(wq.size());
  std::uniform_real_distribution<double> uw(-1.5, 1.5);
  for (int d = 0; d < f.head_dim; ++d) {
    store_from_double(f.weight_dtype, wq.data(), d, uw(rng));
    store_from_double(f.weight_dtype, wk.data(), d, uw(rng));
  }
  std::vector<int64_t> ids(size_t(f.batch * f.seq * (f.mrope ? 3 : 1)));
  for (auto& i : ids) i = int64_t(rng() % 250);
  RopeTable table(backend, 256, f.rotary_dim, 1e6);
  CosSinTable host_table = table.view();
  host_table.cos = table.host_cos().data();
  host_table.sin = table.host_sin().data();
  Positions host_pos = f.mrope ? Positions::multimodal(ids.data(), DType::i64)
                       : f.ids ? Positions::from_ids(ids.data(), DType::i64)
                               : Positions::contiguous(5);
  auto rt = ReferenceTable::from(host_table);
  QkNorm hn{wq.data(), wk.data(), f.weight_dtype, 1e-6, f.one_plus};
  const DType od = f.out_dtype.value_or(f.dtype);
  HostTensor qo = f.in_place ? q : HostTensor(Layout::bshd, od, f.batch, f.seq, f.q_heads, f.head_dim);
  HostTensor ko = f.in_place ? k : HostTensor(Layout::bshd, od, f.batch, f.seq, f.k_heads, f.head_dim);
  if (!f.in_place) qo.poison(), ko.poison();
  RopeOptions opt;
  opt.backend = backend;
  opt.style = f.style;
  opt.rotary_dim = f.rotary_dim;
  opt.rotary_offset = f.rotary_offset;
  if (f.mrope) opt.mrope_section = {16, 24, 24};
  if (!f.in_place) opt.q_out = qo.view;
  auto ref_q = reference_qk_norm_rope(q.view, wq.data(), hn, host_pos, rt, opt);
  auto ref_k = reference_qk_norm_rope(k.view, wk.data(), hn, host_pos, rt, opt);
  // Device (or host) copies of everything the call reads and writes.
  Placement placed(backend);
  auto place = [&](const void* data, size_t bytes) { return placed.place(data, bytes); };
  TensorView qv = q.view, kv = k.view, qov = qo.view, kov = ko.view;
  qv.data = place(q.bytes.data(), q.bytes.size());
  kv.data = place(k.bytes.data(), k.bytes.size());
  qov.data = f.in_place ? qv.data : place(qo.bytes.data(), qo.bytes.size());
  kov.data = f.in_place ? kv.data : place(ko.bytes.data(), ko.bytes.size());
  QkNorm n{place(wq.data(), wq.size()), place(wk.data(), wk.size()), f.weight_dtype, 1e-6, f.one_plus};
  Positions pos = host_pos;
  if (f.ids || f.mrope) pos.ids = place(ids.data(), ids.size() * 8);
  if (!f.in_place) opt.q_out = qov, opt.k_out = kov;
  HostTensor qin = q, kin = k;  // inputs as they were (in place overwrites q and k on the host)
  apply_qk_norm_rope(qv, &kv, pos, table.view(), n, opt);
  FusedResult r;
  r.q = qo.bytes;
  r.k = ko.bytes;
  if (backend == Backend::cuda) {
    placed.fetch(qov.data, r.q.data(), r.q.size());
    placed.fetch(kov.data, r.k.data(), r.k.size());
  } else {
    r.q = f.in_place ? q.bytes : qo.bytes;
    r.k = f.in_place ? k.bytes : ko.bytes;
  }
  TensorView oq = f.in_place ? qin.view : qo.view, ok = f.in_place ? kin.view : ko.view;
  oq.data = r.q.data();
  ok.data = r.k.data();
  r.cq = compare_to_reference(oq, ref_q);
  r.ck = compare_to_reference(ok, ref_k);
  return r;
}

}  // namespace

TEST_CASE("gpu: QK-norm + RoPE against the fp64 reference, and bit-identical to the host backend" *
          doctest::skip(no_gpu())) {
  std::vector<FusedCase> cases;
  cases.push_back({});  // Qwen3-8B
  cases.push_back({128, 128, 32, 4, DType::bf16, DType::bf16});  // Qwen3-30B-A3B, bf16 weights
  cases.push_back({80, 64, 12, 3, DType::f16, DType::f32, RopeStyle::gptj, false, false, true});
  cases.push_back({96, 96, 8, 8, DType::f32, DType::f32, RopeStyle::neox, true, true});
  cases.push_back({192, 128, 16, 2, DType::bf16, DType::f32, RopeStyle::neox, false, false, true});
  cases.push_back({256, 256, 16, 4, DType::bf16, DType::f32, RopeStyle::gptj});
  cases.push_back({512, 512, 4, 1, DType::f32, DType::f32});  // 64 lanes per head: shared memory
  FusedCase mla{192, 64, 16, 16, DType::bf16, DType::f32};  // the rope part at the end of the head
  mla.rotary_offset = 128;
  cases.push_back(mla);
  FusedCase wide{128, 128, 32, 8, DType::bf16, DType::f32, RopeStyle::gptj, false};  // bf16 in, f32 out
  wide.out_dtype = DType::f32;
  cases.push_back(wide);
  FusedCase mm{128, 128, 28, 4, DType::bf16, DType::f32};  // Qwen2-VL's sections
  mm.mrope = true;
  cases.push_back(mm);
  uint64_t seed = 31;
  for (const auto& f : cases) {
    INFO("d" << f.head_dim << " r" << f.rotary_dim << " " << f.q_heads << "/" << f.k_heads << " " << dtype_name(f.dtype)
              << " offset " << f.rotary_offset << (f.out_dtype ? " out f32" : "") << (f.mrope ? " mrope" : ""));
    auto g = run_fused(f, Backend::cuda, seed);
    auto h = run_fused(f, Backend::host, seed);
    CHECK_MESSAGE(g.cq.ok(), g.cq.first_mismatch);
    CHECK_MESSAGE(g.ck.ok(), g.ck.first_mismatch);
    CHECK(h.cq.ok());
    CHECK(g.q == h.q);
    CHECK(g.k == h.k);
    ++seed;
  }
}

TEST_CASE("gpu: reductions over 6, 8, 12, 32, 64 lanes and the whole program equal the host backend bit for bit" *
          doctest::skip(no_gpu())) {
  Signature sig{Arg::pointer("x", DType::f32, true), Arg::pointer("y", DType::f32)};
  for (int lanes : {6, 8, 12, 32, 64, 0}) {
    Kernel k("reduce_test", sig, fmt::format("l{}.v1", lanes), 256, [lanes](lang::Builder& b) {
      lang::Value i = b.program_id() * b.threads() + b.thread_id();
      lang::Value x = b.load(b.param("x") + i);
      lang::Value s = b.reduce_sum(x, lanes);
      lang::Value m = b.reduce_max(b.splat(x, 2) * 0.5, lanes);
      b.store(b.param("y") + i, s * 3.0 + x + b.extract(m, 1));
    });
    const int n = 256 * 5;
    std::vector<float> x(n), yh(n), yg(n);
    std::mt19937_64 rng(lanes + 1);
    for (auto& v : x) v = float(std::uniform_real_distribution<double>(-3, 3)(rng));
    ArgPack ha(k.signature());
    ha.set("x", x.data()).set("y", yh.data());
    k.launch(Backend::host, Grid{5}, ha);
    DeviceBuffer dx(n * 4), dy(n * 4);
    dx.upload(x.data(), n * 4);
    ArgPack ga(k.signature());
    ga.set("x", dx.data()).set("y", dy.data());
    k.launch(Backend::cuda, Grid{5}, ga);
    synchronize();
    dy.download(yg.data(), n * 4);
    INFO("lanes " << lanes);
    CHECK(std::memcmp(yh.data(), yg.data(), n * 4) == 0);
    // And right: group sums in fp64 (a spare thread of a packed warp is a group of one).
    double worst = 0;
    for (int p = 0; p < 5; ++p)
      for (const test::LaneGroup& g : test::lane_groups(256, lanes)) {
        const size_t first = size_t(p * 256 + g.first);
        double sum = 0, mx = -1e300, mag = 0;
        for (size_t t = first; t < first + size_t(g.size); ++t)
          sum += x[t], mag += std::fabs(x[t]), mx = std::max(mx, 0.5 * x[t]);
        for (size_t t = first; t < first + size_t(g.size); ++t)
          worst = std::max(worst, std::fabs(yg[t] - (sum * 3 + x[t] + mx)) / (mag * 3 + 6));
      }
    CHECK(worst < 1e-5);
  }
}

namespace {
// A GPU, and a driver that can make and switch contexts (else the case is reported skipped).
bool no_context_api() {
  if (no_gpu()) return true;
  const auto& d = runtime::driver();
  return !d.cuCtxCreate || !d.cuCtxDestroy || !d.cuCtxPushCurrent || !d.cuCtxPopCurrent;
}
}  // namespace

TEST_CASE("gpu: a second context on device 0 gets its own loaded kernel; both compute correctly" *
          doctest::skip(no_context_api())) {
  const auto& d = runtime::driver();
  Case c;
  c.head_dim = c.rotary_dim = 72;  // a spec no other test uses
  c.q_heads = 5;
  c.k_heads = 1;
  check_case(c, 71);  // primary context: built and loaded there
  CUdevice dev = 0;
  runtime::check(d.cuDeviceGet(&dev, 0), "cuDeviceGet");
  CUctxCreateParams params{};
  CUcontext second = nullptr;
  runtime::check(d.cuCtxCreate(&second, &params, 0, dev), "cuCtxCreate");
  runtime::ContextHandle owner(second);
  runtime::check(d.cuCtxPushCurrent(second), "cuCtxPushCurrent");
  auto before = stats();
  check_case(c, 72);  // the second context: a miss there, its own load, right results
  auto after = stats();
  CHECK(after.memory_misses == before.memory_misses + 1);
  CHECK(after.modules_loaded == before.modules_loaded + 1);
  check_case(c, 73);  // and a hit the second time
  CHECK(stats().memory_hits == after.memory_hits + 1);
  CUcontext popped = nullptr;
  runtime::check(d.cuCtxPopCurrent(&popped), "cuCtxPopCurrent");
  CHECK(popped == second);
  owner.reset();  // destroyed
  auto s0 = stats();
  check_case(c, 74);  // back in the primary context: its own kernel, still loaded and right
  CHECK(stats().memory_hits == s0.memory_hits + 1);
  CHECK(stats().modules_loaded == s0.modules_loaded);
}

int main(int argc, char** argv) {
  g_self = argv[0];
  if (argc > 1 && std::string(argv[1]) == "--cache-child") return cache_child();
  // Counters in these tests assume nothing on disk from earlier runs; the disk-cache test turns the
  // cache on for its own directory.
  ::setenv("ROPEJIT_CACHE", "off", 1);
  if (no_gpu())
    std::cout << "GPU tests SKIPPED: no usable GPU (" << gpu().reason << "); every GPU case below is reported as skipped, none as passed\n";
  else
    std::cout << "GPU: " << gpu().name << " sm_" << gpu().sm << ", driver " << gpu().driver_version << ", PTX ISA "
              << gpu().ptx_isa / 10 << "." << gpu().ptx_isa % 10 << "\n";
  if (!no_gpu() && gpu_count() < 2)
    std::cout << "Several-GPU test SKIPPED: the driver reports " << gpu_count() << " GPU(s), it needs 2\n";
  doctest::Context ctx(argc, argv);
  int rc = ctx.run();
  if (rc == 0 && no_gpu() && !ctx.shouldExit()) return 77;  // ctest's SKIP_RETURN_CODE
  return rc;
}
