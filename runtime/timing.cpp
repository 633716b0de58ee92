#include <algorithm>
#include <memory>

#include "ropejit/device.hpp"
#include "runtime/context.hpp"
#include "runtime/driver_api.hpp"
#include "runtime/handle.hpp"

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

std::vector<double> time_loop(const std::function<void(CUstream)>& run, int warmup, int reps, CUstream stream) {
  runtime::ensure_context(0);
  const auto& d = driver();
  for (int i = 0; i < warmup; ++i) run(stream);
  std::vector<EventHandle> events;
  for (int i = 0; i <= reps; ++i) events.push_back(make_event());
  auto record = ROPEJIT_NEED(d, cuEventRecord, kTiming);
  // Back-to-back runs, an event between each: every sample is one run's GPU time.
  check(record(events[0].get(), stream), "cuEventRecord");
  for (int i = 0; i < reps; ++i) {
    run(stream);
    check(record(events[size_t(i) + 1].get(), stream), "cuEventRecord");
  }
  check(ROPEJIT_NEED(d, cuEventSynchronize, kTiming)(events[size_t(reps)].get()), "cuEventSynchronize");
  std::vector<double> ms;
  for (int i = 0; i < reps; ++i) {
    float t = 0;
    check(ROPEJIT_NEED(d, cuEventElapsedTime, kTiming)(&t, events[size_t(i)].get(), events[size_t(i) + 1].get()),
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
