#include <algorithm>
#include <memory>

#include "ropejit/ropejit.hpp"
#include "runtime/context.hpp"
#include "runtime/driver_api.hpp"

namespace ropejit {

using runtime::check;
using runtime::driver;

namespace {

struct Event {
  CUevent e = nullptr;
  Event() { check(driver().cuEventCreate(&e, CU_EVENT_DEFAULT), "cuEventCreate"); }
  ~Event() { driver().cuEventDestroy(e); }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
};

struct Stream {
  CUstream s = nullptr;
  Stream() { check(driver().cuStreamCreate(&s, CU_STREAM_NON_BLOCKING), "cuStreamCreate"); }
  ~Stream() { driver().cuStreamDestroy(s); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
};

struct Graph {
  CUgraph g = nullptr;
  CUgraphExec exec = nullptr;
  ~Graph() {
    if (exec) driver().cuGraphExecDestroy(exec);
    if (g) driver().cuGraphDestroy(g);
  }
};

std::vector<double> time_loop(const std::function<void(CUstream)>& run, int warmup, int reps, CUstream stream) {
  runtime::ensure_context(0);
  const auto& d = driver();
  for (int i = 0; i < warmup; ++i) run(stream);
  std::vector<std::unique_ptr<Event>> events;
  for (int i = 0; i <= reps; ++i) events.push_back(std::make_unique<Event>());
  // Back-to-back runs, an event between each: every sample is one run's GPU time.
  check(d.cuEventRecord(events[0]->e, stream), "cuEventRecord");
  for (int i = 0; i < reps; ++i) {
    run(stream);
    check(d.cuEventRecord(events[i + 1]->e, stream), "cuEventRecord");
  }
  check(d.cuEventSynchronize(events[reps]->e), "cuEventSynchronize");
  std::vector<double> ms;
  for (int i = 0; i < reps; ++i) {
    float t = 0;
    check(d.cuEventElapsedTime(&t, events[i]->e, events[i + 1]->e), "cuEventElapsedTime");
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
  Stream stream;
  fn(stream.s);  // outside capture: compiles and loads whatever fn needs
  check(d.cuStreamSynchronize(stream.s), "cuStreamSynchronize");
  Graph graph;
  check(d.cuStreamBeginCapture(stream.s, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL), "cuStreamBeginCapture");
  fn(stream.s);
  check(d.cuStreamEndCapture(stream.s, &graph.g), "cuStreamEndCapture");
  check(d.cuGraphInstantiateWithFlags(&graph.exec, graph.g, 0), "cuGraphInstantiate");
  return time_loop([&](CUstream s) { check(d.cuGraphLaunch(graph.exec, s), "cuGraphLaunch"); }, warmup, reps,
                   stream.s);
}

}  // namespace ropejit
