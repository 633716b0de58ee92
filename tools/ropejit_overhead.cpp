// ropejit-overhead: the host cost per call of one decode step through the C++ API and the C API, side
// by side (python/tests/gpu_check.py adds the Python paths). The shape is Llama-3-8B's: q [tokens, 32,
// 128], k [tokens, 8, 128], bf16, int64 position ids, in place. Timing as ropejit-bench's: bursts of
// calls short enough that the launch queue never fills (so the GPU's pace does not show), wall clock,
// the median burst's time per call; then each path's GPU time per call by events. `--backend cpu`
// runs the host backend (the whole kernel on this CPU, so not the overhead alone: a smoke test).
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <random>
#include <vector>

#include "ropejit/ropejit.hpp"
#include "ropejit_c.h"

using namespace ropejit;

namespace {

// Median time per call (us) of `call` over `reps` bursts of `burst` calls, synchronised between bursts.
double host_us_per_call(const std::function<void()>& call, bool gpu, int burst, int reps) {
  std::vector<double> per_call;
  for (int i = 0; i < 3; ++i) call();  // warm: kernel ready, caches hot
  for (int rep = 0; rep < reps; ++rep) {
    if (gpu) synchronize();
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < burst; ++i) call();
    per_call.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / burst);
  }
  if (gpu) synchronize();
  std::sort(per_call.begin(), per_call.end());
  return per_call[per_call.size() / 2];
}

DLTensor dl(void* data, DLDevice dev, DLDataType dtype, int ndim, int64_t* shape) {
  DLTensor t{};
  t.data = data;
  t.device = dev;
  t.ndim = ndim;
  t.dtype = dtype;
  t.shape = shape;
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ropejit-overhead: host cost per call through the C++ API and the C API"};
  std::string backend = "cuda";
  int64_t tokens = 64;
  int burst = 256, reps = 40;
  app.add_option("--backend", backend, "cuda or cpu")->check(CLI::IsMember({"cuda", "cpu"}));
  app.add_option("--tokens", tokens, "tokens per call (decode: one per sequence)")->check(CLI::Range(1, 1 << 20));
  app.add_option("--burst", burst, "calls per timed burst")->check(CLI::Range(1, 1000));
  app.add_option("--reps", reps, "bursts")->check(CLI::Range(1, 100000));
  CLI11_PARSE(app, argc, argv);
  const bool gpu = backend == "cuda";
  if (gpu) {
    auto info = device_info();
    if (!info.available) {
      fmt::print("ropejit-overhead SKIPPED: no GPU ({})\n", info.reason);
      return 77;
    }
    fmt::print("device: {}\n", info.name);
  }
  const int64_t hq = 32, hk = 8, d = 128, max_position = 8192;
  const size_t q_bytes = size_t(tokens * hq * d * 2), k_bytes = size_t(tokens * hk * d * 2), id_bytes = size_t(tokens * 8);
  std::mt19937_64 rng(1);
  std::vector<uint16_t> hq_data(q_bytes / 2), hk_data(k_bytes / 2);
  std::uniform_real_distribution<float> u(-2, 2);
  for (auto& x : hq_data) x = float_to_bf16(u(rng));
  for (auto& x : hk_data) x = float_to_bf16(u(rng));
  std::vector<int64_t> ids(static_cast<size_t>(tokens));
  for (auto& p : ids) p = int64_t(rng() % uint64_t(max_position));

  // Buffers in the backend's memory.
  DeviceBuffer dq, dk, dids;
  void *q = hq_data.data(), *k = hk_data.data(), *pos = ids.data();
  if (gpu) {
    dq = DeviceBuffer(q_bytes), dk = DeviceBuffer(k_bytes), dids = DeviceBuffer(id_bytes);
    dq.upload(hq_data.data(), q_bytes), dk.upload(hk_data.data(), k_bytes), dids.upload(ids.data(), id_bytes);
    q = dq.data(), k = dk.data(), pos = dids.data();
  }
  const Backend be = gpu ? Backend::cuda : Backend::host;

  // C++ API
  RopeTable table(be, max_position, d, 500000.0);
  auto qv = TensorView::bshd(q, DType::bf16, 1, tokens, hq, d);
  auto kv = TensorView::bshd(k, DType::bf16, 1, tokens, hk, d);
  auto positions = Positions::from_ids(pos, DType::i64);
  RopeOptions opt;
  opt.backend = be;
  auto cpp_call = [&] { apply_rope(qv, &kv, positions, table.view(), opt, nullptr); };

  // C API
  DLDevice dev{gpu ? kDLCUDA : kDLCPU, 0};
  DLDataType bf16{kDLBfloat, 16, 1}, f32{kDLFloat, 32, 1}, i64{kDLInt, 64, 1};
  int64_t q_shape[3] = {tokens, hq, d}, k_shape[3] = {tokens, hk, d}, p_shape[1] = {tokens};
  DLTensor cq = dl(q, dev, bf16, 3, q_shape), ck = dl(k, dev, bf16, 3, k_shape), cp = dl(pos, dev, i64, 1, p_shape);
  ropejit_table* ctable = nullptr;
  if (ropejit_table_create(dev, max_position, d, 500000.0, f32, &ctable) != ROPEJIT_OK) {
    fmt::print("ropejit-overhead: {}\n", ropejit_last_error());
    return 1;
  }
  ropejit_options copt;
  ropejit_options_init(&copt);
  bool c_failed = false;
  auto c_call = [&] {
    if (ropejit_rope(&cq, &ck, nullptr, nullptr, &cp, ctable, &copt, nullptr) != ROPEJIT_OK) c_failed = true;
  };

  // Prepared calls: made once for the shape, each launch with this step's data.
  const PreparedCall prepared = prepare_rope(qv, &kv, positions, table.view(), opt);
  auto cpp_prepared_call = [&] { prepared.launch(RopeData{q, k, nullptr, nullptr, positions}, nullptr); };
  ropejit_prepared* cprepared = nullptr;
  if (ropejit_rope_prepare(&cq, &ck, nullptr, nullptr, &cp, ctable, &copt, 0, &cprepared) != ROPEJIT_OK) {
    fmt::print("ropejit-overhead: {}\n", ropejit_last_error());
    return 1;
  }
  const ropejit_data cdata{q, k, nullptr, nullptr, pos, 0};
  auto c_prepared_call = [&] {
    if (ropejit_prepared_launch(cprepared, &cdata, nullptr) != ROPEJIT_OK) c_failed = true;
  };

  const double cpp_us = host_us_per_call(cpp_call, gpu, burst, reps);
  const double c_us = host_us_per_call(c_call, gpu, burst, reps);
  const double cpp_prepared_us = host_us_per_call(cpp_prepared_call, gpu, burst, reps);
  const double c_prepared_us = host_us_per_call(c_prepared_call, gpu, burst, reps);
  if (c_failed) {
    fmt::print("ropejit-overhead: the C API call failed: {}\n", ropejit_last_error());
    return 1;
  }
  fmt::print("{} tokens, q {}x{} k {}x{} bf16, int64 ids, in place, {} backend; median of {} bursts of {} calls\n",
             tokens, hq, d, hk, d, backend, reps, burst);
  fmt::print("{:<16} {:>14}{}\n", "path", "host us/call", gpu ? "   GPU us/call" : "");
  for (auto [name, us, call] : {std::tuple{"C++ API", cpp_us, std::function<void()>(cpp_call)},
                                std::tuple{"C API", c_us, std::function<void()>(c_call)},
                                std::tuple{"C++ prepared", cpp_prepared_us, std::function<void()>(cpp_prepared_call)},
                                std::tuple{"C prepared", c_prepared_us, std::function<void()>(c_prepared_call)}}) {
    std::string gpu_col;
    if (gpu) {
      auto ms = time_gpu_ms(call, 10, 100);
      gpu_col = fmt::format("{:>14.2f}", ms[ms.size() / 2] * 1000);
    }
    fmt::print("{:<16} {:>14.2f}{}\n", name, us, gpu_col);
  }
  // For scripts (gpu_check.py): one line per path.
  fmt::print("RESULT cpp_api {:.3f}\nRESULT c_api {:.3f}\nRESULT cpp_prepared {:.3f}\nRESULT c_prepared {:.3f}\n", cpp_us,
             c_us, cpp_prepared_us, c_prepared_us);
  ropejit_prepared_destroy(cprepared);
  ropejit_table_destroy(ctable);
  return 0;
}
