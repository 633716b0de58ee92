// ropejit-bench: RoPE speed on the GPU against the memory-bandwidth roofline. Measures the
// device-to-device copy bandwidth, then each case: GPU time by events (median, inputs rotated past
// the L2), bandwidth and its fraction of the copy, host cost per call, and time through a CUDA graph.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "bench_cases.hpp"
#include "plot_svg.hpp"

using namespace ropejit;
using namespace ropejit::bench;

namespace {

// Start-up costs of the Llama-3-8B spec in this process: run it once with a fresh ROPEJIT_CACHE_DIR
// (code generation), then again with the same one (cached cubin).
int run_startup() {
  Case c;
  c.seq = 1;  // one token: the per-call host cost is not hidden behind GPU time
  Data data(c, 0);
  RopeOptions opt;
  auto q = data.q(0), k = data.k(0);
  auto t0 = std::chrono::steady_clock::now();
  apply_rope(q, &k, data.positions(), data.table(), opt);
  synchronize();
  double first = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  auto s = stats();
  const char* layer = s.kernels_generated ? "code generation" : s.bundle_hits ? "bundle"
                      : s.disk_cubin_hits ? "disk cache, cubin" : "disk cache, PTX";
  fmt::print("first call: {:.2f} ms, served by {}\n", first, layer);
  if (s.kernels_generated)
    fmt::print("  LLVM IR -> PTX: {:.2f} ms (target machine {:.2f}, IR built {:.2f}, optimised {:.2f}, PTX emitted {:.2f})\n"
               "  driver PTX -> cubin (cuLink, the PTX JIT): {:.2f} ms\n",
               s.last_codegen_ms, s.last_target_machine_ms,
               s.last_codegen_ms - s.last_target_machine_ms - s.last_optimize_ms - s.last_emit_ms, s.last_optimize_ms,
               s.last_emit_ms, s.last_link_ms);
  fmt::print("  code load (the cubin loaded, its kernel resolved in the context): {:.3f} ms\n", s.last_load_ms);
  // Enqueue cost: bursts short enough that the launch queue never fills, so the GPU's pace does
  // not show; the median burst.
  const int burst = 256;
  std::vector<double> per_call;
  for (int rep = 0; rep < 40; ++rep) {
    synchronize();
    t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < burst; ++i) apply_rope(q, &k, data.positions(), data.table(), opt);
    per_call.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / burst);
  }
  synchronize();
  std::sort(per_call.begin(), per_call.end());
  fmt::print("warm call, host side: {:.2f} us per apply_rope (argument checks + in-memory hit + cuLaunchKernel)\n",
             per_call[per_call.size() / 2]);
  // The in-memory hit bounded from above: a whole host-backend call (checks, config, the same
  // once-per-key cache, and running a one-pair kernel on the CPU).
  std::vector<uint16_t> x(2, 0x3f80);
  auto hv = TensorView::bshd(x.data(), DType::bf16, 1, 1, 1, 2);
  RopeTable host_table(Backend::host, 4, 2);
  RopeOptions hopt;
  hopt.backend = Backend::host;
  apply_rope(hv, nullptr, Positions::contiguous(1), host_table.view(), hopt);
  const int n = 100000;
  t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) apply_rope(hv, nullptr, Positions::contiguous(1), host_table.view(), hopt);
  double host_call = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / n;
  fmt::print("in-memory hit: at most {:.3f} us (a whole host-backend apply_rope of one pair, which includes it)\n",
             host_call);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ropejit-bench: RoPE against the device-to-device copy bandwidth"};
  CaseOptions selection;
  std::string json_path, plot_path;
  int reps = 100;
  selection.add_to(app);
  app.add_option("--reps", reps, "timed runs per case")->check(CLI::Range(5, 100000));
  app.add_option("--json", json_path, "write the results as JSON");
  app.add_option("--plot", plot_path, "write an SVG plot of bandwidth against tokens");
  std::string backend_name = "auto";
  app.add_option("--backend", backend_name, "cuda, cpu (the host backend, timed by wall clock), or auto")
      ->check(CLI::IsMember({"auto", "cuda", "cpu"}));
  bool startup = false;
  app.add_flag("--startup", startup,
               "only measure start-up: the first call (which cache layer served it) and the warm per-call host cost");
  CLI11_PARSE(app, argc, argv);

  try {
    auto info = device_info();
    const Backend backend = backend_name == "cpu" || (backend_name == "auto" && !info.available) ? Backend::host
                                                                                               : Backend::cuda;
    if (backend == Backend::cuda && !info.available) {
      fmt::print(stderr, "ropejit-bench --backend cuda needs a GPU: {}\n", info.reason);
      return 2;
    }
    if (startup) {
      if (backend == Backend::host) {
        fmt::print(stderr, "ropejit-bench --startup measures the GPU path; there is no GPU here\n");
        return 2;
      }
      return run_startup();
    }
    auto cases = selection.any() ? selection.cases() : default_cases();
    double copy = copy_bandwidth_gbps(backend);
    if (backend == Backend::cuda) {
      fmt::print("device: {} (sm_{}), driver {}, PTX ISA {}.{}\n", info.name, info.sm, info.driver_version,
                 info.ptx_isa / 10, info.ptx_isa % 10);
      fmt::print("device-to-device copy: {:.0f} GB/s (bytes read plus written)\n\n", copy);
    } else {
      reps = std::min(reps, 10);
      fmt::print("host backend (the same kernels compiled for this CPU, one thread{})\n",
                 info.available ? "" : "; no GPU: " + info.reason);
      fmt::print("host memcpy: {:.1f} GB/s (bytes read plus written)\n\n", copy);
    }
    fmt::print("{:<34} {:>12} {:>10} {:>8} {:>7} {:>10} {:>10}  {}\n", "case", "tokens",
               backend == Backend::cuda ? "GPU us" : "time us", "GB/s", "% copy", "host us", "graph us", "config");
    nlohmann::json out;
    out["device"] = backend == Backend::cuda ? info.name : "host-cpu";
    out["backend"] = backend == Backend::cuda ? "cuda" : "cpu";
    out["driver_version"] = info.driver_version;
    out["copy_gbps"] = copy;
    out["cases"] = nlohmann::json::array();
    std::map<std::string, std::vector<std::pair<double, double>>> series;
    const int64_t l2 = 64ll << 20;  // at least the H100's 50 MB
    for (const auto& c : cases) {
      Data data(c, l2, backend);
      RopeOptions opt;
      opt.style = c.style;
      opt.backend = backend;
      auto m = measure(c, data, opt, copy, reps);
      fmt::print("{:<34} {:>12} {:>10.2f} {:>8.0f} {:>6.1f}% {:>10.2f} {:>10}  {}\n", c.series(),
                 c.decode ? fmt::format("{}x1", c.batch) : fmt::format("{}", c.tokens()), m.gpu_us, m.gbps,
                 100 * m.fraction, m.host_us, backend == Backend::cuda ? fmt::format("{:.2f}", m.graph_us) : "-",
                 m.config.key());
      std::fflush(stdout);
      out["cases"].push_back({{"case", c.label()},    {"series", c.series()},   {"tokens", c.tokens()},
                              {"decode", c.decode},   {"gpu_us", m.gpu_us},     {"gbps", m.gbps},
                              {"fraction_of_copy", m.fraction}, {"host_us_per_call", m.host_us},
                              {"graph_us", m.graph_us}, {"config", m.config.key()}, {"bytes", c.bytes()}});
      series[c.series()].push_back({double(c.tokens()), 100 * m.fraction});
    }
    auto write = [](const std::string& path, const std::string& text) {
      std::ofstream f(path);
      f << text;
      if (!f.flush()) throw Error(ErrorKind::io, "cannot write " + path);
    };
    if (!json_path.empty()) write(json_path, out.dump(2) + "\n");
    if (!plot_path.empty()) write(plot_path, plot_svg(series, fmt::format("ropejit on {} (copy {:.0f} GB/s)", info.name, copy)));
    return 0;
  } catch (const Error& e) {
    fmt::print(stderr, "ropejit-bench: {}\n", e.what());
    return 1;
  }
}
