#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <memory>

#include "ropejit/device.hpp"
#include "runtime/context.hpp"
#include "runtime/driver_api.hpp"
#include "runtime/handle.hpp"
#include "runtime/module.hpp"

namespace ropejit {

using runtime::check;
using runtime::driver;
using runtime::EventHandle;
using runtime::GraphExecHandle;
using runtime::GraphHandle;
using runtime::StreamHandle;

namespace {

const char* kTiming = "timing on the GPU";

EventHandle make_event() {
  CUevent e = nullptr;
  check(ROPEJIT_NEED(driver(), cuEventCreate, kTiming)(&e, CU_EVENT_DEFAULT), "cuEventCreate");
  return EventHandle(e);
}

// Holds a stream for `ns` nanoseconds: one thread spinning on the global timer. The timed runs are
// enqueued behind it, so they run back to back at the GPU's own pace, and an event pair brackets one
// run's GPU time; unheld, a small kernel's samples would measure the host's time to enqueue it.
const char* kHoldPtx = R"(.version 7.0
.target sm_52
.address_size 64
.visible .entry ropejit_hold(.param .u64 ns)
{
  .reg .pred %p;
  .reg .b64 %rd<5>;
  ld.param.u64 %rd1, [ns];
  mov.u64 %rd2, %globaltimer;
WAIT:
  mov.u64 %rd3, %globaltimer;
  sub.u64 %rd4, %rd3, %rd2;
  setp.lt.u64 %p, %rd4, %rd1;
  @%p bra WAIT;
  ret;
}
)";

// Loaded once per context (a function belongs to the context it was resolved in).
void hold(CUstream stream, uint64_t ns) {
  static std::mutex mutex;
  static std::map<CUcontext, runtime::Module> kernels;
  CUcontext ctx = nullptr;
  check(driver().cuCtxGetCurrent(&ctx), "cuCtxGetCurrent");
  CUfunction f = nullptr;
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = kernels.find(ctx);
    if (it == kernels.end())
      it = kernels.emplace(ctx, runtime::Module::load(kHoldPtx, "the timing hold kernel", "ropejit_hold")).first;
    f = it->second.function();
  }
  void* args[] = {&ns};
  check(driver().cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, stream, args, nullptr), "cuLaunchKernel");
}

std::vector<double> time_loop(const std::function<void(CUstream)>& run, int warmup, int reps, CUstream stream) {
  runtime::ensure_context(0);
  const auto& d = driver();
  auto record = ROPEJIT_NEED(d, cuEventRecord, kTiming);
  auto query = ROPEJIT_NEED(d, cuEventQuery, kTiming);
  auto wait = ROPEJIT_NEED(d, cuEventSynchronize, kTiming);
  std::vector<EventHandle> events;
  for (int i = 0; i <= reps + 1; ++i) events.push_back(make_event());
  // The warm-up's enqueue time sizes the hold: twice what enqueuing the timed runs should take.
  run(stream);
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 1; i < warmup; ++i) run(stream);
  const double enqueue_us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / std::max(1, warmup - 1);
  check(record(events[0].get(), stream), "cuEventRecord");
  check(wait(events[0].get()), "cuEventSynchronize");
  double hold_us = std::min(2e6, 2 * reps * (enqueue_us + 5) + 200);
  for (int attempt = 0;; ++attempt) {
    hold(stream, uint64_t(hold_us * 1e3));
    check(record(events[0].get(), stream), "cuEventRecord");  // done when the hold ends
    check(record(events[1].get(), stream), "cuEventRecord");
    for (int i = 0; i < reps; ++i) {
      run(stream);
      check(record(events[size_t(i) + 2].get(), stream), "cuEventRecord");
    }
    // Still holding once everything is enqueued: the runs went back to back. Else (a slow host, or a
    // queue that filled) hold longer and run again.
    const bool held = query(events[0].get()) == CUDA_ERROR_NOT_READY;
    check(wait(events[size_t(reps) + 1].get()), "cuEventSynchronize");
    if (held || attempt == 2 || hold_us >= 2e6) break;
    hold_us = std::min(2e6, hold_us * 4);
  }
  std::vector<double> ms;
  for (int i = 0; i < reps; ++i) {
    float t = 0;
    check(ROPEJIT_NEED(d, cuEventElapsedTime, kTiming)(&t, events[size_t(i) + 1].get(), events[size_t(i) + 2].get()),
          "cuEventElapsedTime");
    ms.push_back(t);
  }
  std::sort(ms.begin(), ms.end());
  return ms;
}

}  // namespace

std::vector<double> time_gpu_ms(const std::function<void()>& fn, int warmup, int reps, void* stream) {
  return time_loop([&](CUstream) { fn(); }, warmup, reps, static_cast<CUstream>(stream));
}

std::vector<double> time_graph_ms(const std::function<void(void* stream)>& fn, int warmup, int reps) {
  runtime::ensure_context(0);
  const auto& d = driver();
  const char* graphs = "timing through a CUDA graph";
  CUstream s = nullptr;
  check(ROPEJIT_NEED(d, cuStreamCreate, graphs)(&s, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
  StreamHandle stream(s);
  fn(s);  // outside capture: compiles and loads whatever fn needs
  check(ROPEJIT_NEED(d, cuStreamSynchronize, graphs)(s), "cuStreamSynchronize");
  CUgraph g = nullptr;
  check(ROPEJIT_NEED(d, cuStreamBeginCapture, graphs)(s, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL), "cuStreamBeginCapture");
  fn(s);
  check(ROPEJIT_NEED(d, cuStreamEndCapture, graphs)(s, &g), "cuStreamEndCapture");
  GraphHandle graph(g);
  CUgraphExec e = nullptr;
  check(ROPEJIT_NEED(d, cuGraphInstantiateWithFlags, graphs)(&e, g, 0), "cuGraphInstantiate");
  GraphExecHandle exec(e);
  auto launch = ROPEJIT_NEED(d, cuGraphLaunch, graphs);
  return time_loop([&](CUstream st) { check(launch(exec.get(), st), "cuGraphLaunch"); }, warmup, reps, s);
}

}  // namespace ropejit
