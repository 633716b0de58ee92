// ropejit-tune: autotuning sweeps. For each case, every candidate config is compiled, checked against
// the fp64 reference on random data (a wrong one is dropped and reported), timed as ropejit-bench
// times, and the best per (device, spec, token bucket) is written to the tuning file that
// apply_rope reads.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>

#include "bench_cases.hpp"

using namespace ropejit;
using namespace ropejit::bench;

namespace {

// Runs the candidate on a small problem of the same spec (same kernel) and checks every element
// against the op's fp64 reference. The host copy is made from the same seed: the same data.
std::string check_candidate(const Case& c, const RopeOptions& opt) {
  Case small = c;
  small.batch = c.decode ? c.batch : 2;
  small.seq = c.decode ? 1 : 33;
  Data dev(small, 0), host(small, 0, Backend::host);
  const Op& o = op(c.op);
  o.run(small, dev, 0, opt, nullptr);
  synchronize();
  auto ref_table = host.reference_table();
  auto check = [&](bool is_k) -> std::string {
    std::vector<uint8_t> got = dev.read(is_k, 0);
    TensorView in = is_k ? host.k(0) : host.q(0), out = in;
    out.data = got.data();
    auto cmp = compare_to_reference(out, o.reference(small, in, host.positions(), ref_table, host.norm().q_weight));
    return cmp.ok() ? "" : fmt::format("{}: {} of {} wrong, first {}", is_k ? "k" : "q", cmp.mismatches, cmp.checked,
                                       cmp.first_mismatch);
  };
  auto e = check(false);
  if (e.empty() && c.k_heads) e = check(true);
  return e;
}

void progress(size_t done, size_t total, const std::string& what) {
  const int width = 30;
  int filled = int(double(done) / double(total) * width);
  fmt::print(stderr, "\r  [{}{}] {}/{} {:<24}", std::string(size_t(filled), '#'), std::string(size_t(width - filled), '.'),
             done, total, what);
  if (done == total) fmt::print(stderr, "\n");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ropejit-tune: sweep kernel configs, keep the best per (device, spec, token bucket)"};
  CaseOptions selection;
  std::string out_path = tuning_file_path();
  int reps = 50;
  bool dry_run = false;
  int shown = 8;
  selection.add_to(app);
  app.add_option("--reps", reps, "timed runs per candidate")->check(CLI::Range(5, 100000));
  app.add_option("--out", out_path, "tuning file to update")->capture_default_str();
  app.add_flag("--dry-run", dry_run, "sweep and print, write nothing");
  app.add_option("--show", shown, "candidates printed per case, best first (the default config is always shown)")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  try {
    if (!selection.any()) selection.tokens = {64, 1024, 16384, 65536};
    auto cases = selection.cases();  // bad flags are named before anything else is said
    auto info = device_info();
    if (!info.available) {
      fmt::print(stderr, "ropejit-tune needs a GPU: {}\n", info.reason);
      return 2;
    }
    double copy = copy_bandwidth_gbps();
    fmt::print("device: {}; copy bandwidth {:.0f} GB/s\n", info.name, copy);
    std::vector<TuningRecord> records;
    for (const auto& c : cases) {
      Data data(c, 64ll << 20);
      RopeOptions base;
      base.style = c.style;
      auto choice = op(c.op).describe(c, data, base);
      fmt::print("\n{} — {} ({} candidates; default {} from {})\n", c.label(), choice.spec_key, choice.candidates.size(),
                 choice.config.key(), choice.source);
      struct Row {
        KernelConfig config;
        Measurement m;
        std::string error;
      };
      std::vector<Row> rows;
      size_t done = 0;
      for (const auto& cand : choice.candidates) {
        progress(done, choice.candidates.size(), cand.key());
        RopeOptions opt = base;
        opt.threads = cand.threads;
        opt.vector_width = cand.vector_width;
        opt.unroll = cand.unroll;
        opt.streaming = cand.streaming;
        opt.tokens_per_program = cand.tokens;
        Row r{cand, {}, ""};
        try {
          r.error = check_candidate(c, opt);
          if (r.error.empty()) r.m = measure(c, data, opt, copy, reps, false);
        } catch (const Error& e) {
          r.error = e.what();
        }
        rows.push_back(r);
        progress(++done, choice.candidates.size(), cand.key());
      }
      std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
        if (a.error.empty() != b.error.empty()) return a.error.empty();
        return a.m.gpu_us < b.m.gpu_us;
      });
      fmt::print("  {:<14} {:>10} {:>8} {:>7}\n", "config", "GPU us", "GB/s", "% copy");
      for (size_t i = 0; i < rows.size(); ++i) {
        const auto& r = rows[i];
        if (!r.error.empty()) {
          fmt::print("  {:<14} DROPPED: {}\n", r.config.key(), r.error);
          continue;
        }
        if (i < size_t(shown) || r.config == choice.config)
          fmt::print("  {:<14} {:>10.2f} {:>8.0f} {:>6.1f}%{}{}\n", r.config.key(), r.m.gpu_us, r.m.gbps,
                     100 * r.m.fraction, i == 0 ? "  best" : "", r.config == choice.config ? "  (default)" : "");
      }
      if (!rows.empty() && rows[0].error.empty())
        records.push_back(TuningRecord{info.name, c.op, choice.spec_key, token_bucket(c.tokens()),
                                       config_values(rows[0].config), rows[0].m.gbps});
    }
    if (!dry_run && !records.empty()) {
      save_tuning(records, out_path);
      fmt::print("\nwrote {} record(s) to {}\n", records.size(), out_path);
    }
    return 0;
  } catch (const Error& e) {
    fmt::print(stderr, "ropejit-tune: {}\n", e.what());
    return 1;
  }
}
