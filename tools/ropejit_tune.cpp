// ropejit-tune: autotuning sweeps. For each case, every candidate config is compiled, checked against
// the fp64 reference on random data (a wrong one is dropped and reported), timed as ropejit-bench
// times, and the best per (device, spec, token bucket) is written to the tuning file that
// apply_rope reads.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <random>

#include "bench_cases.hpp"

using namespace ropejit;
using namespace ropejit::bench;

namespace {

// Runs the candidate on a small problem of the same spec (same kernel) and checks every element.
std::string check_candidate(const Case& c, const RopeOptions& opt, const CosSinTable& table,
                            const CosSinTable& host_table, uint64_t seed) {
  const int64_t batch = c.decode ? c.batch : 2, seq = c.decode ? 1 : 33;
  const size_t es = size_t(dtype_size(c.dtype));
  const size_t qn = size_t(batch * seq * c.q_heads * c.head_dim), kn = size_t(batch * seq * c.k_heads * c.head_dim);
  std::vector<uint8_t> q(qn * es), k(std::max<size_t>(kn, 1) * es);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-2.0, 2.0);
  for (size_t i = 0; i < qn; ++i) store_from_double(c.dtype, q.data(), int64_t(i), u(rng));
  for (size_t i = 0; i < kn; ++i) store_from_double(c.dtype, k.data(), int64_t(i), u(rng));
  std::vector<int32_t> ids(size_t(batch * seq));
  for (auto& i : ids) i = int32_t(rng() % 4000 + 1);
  DeviceBuffer dq(q.size()), dk(k.size()), dids(ids.size() * 4);
  dq.upload(q.data(), q.size());
  dk.upload(k.data(), k.size());
  dids.upload(ids.data(), ids.size() * 4);
  auto qv = TensorView::bshd(dq.data(), c.dtype, batch, seq, c.q_heads, c.head_dim);
  auto kv = TensorView::bshd(dk.data(), c.dtype, batch, seq, std::max(1, c.k_heads), c.head_dim);
  Positions pos = c.decode ? Positions::from_ids(dids.data(), DType::i32) : Positions::contiguous(5);
  Positions host_pos = c.decode ? Positions::from_ids(ids.data(), DType::i32) : pos;
  apply_rope(qv, c.k_heads ? &kv : nullptr, pos, table, opt);
  synchronize();
  std::vector<uint8_t> qo(q.size()), ko(k.size());
  dq.download(qo.data(), qo.size());
  dk.download(ko.data(), ko.size());
  auto ref_table = ReferenceTable::from(host_table);
  auto check = [&](std::vector<uint8_t>& in, std::vector<uint8_t>& out, int heads, const char* name) -> std::string {
    auto vin = TensorView::bshd(in.data(), c.dtype, batch, seq, heads, c.head_dim);
    auto vout = TensorView::bshd(out.data(), c.dtype, batch, seq, heads, c.head_dim);
    auto cmp = compare_to_reference(vout, reference_rope(vin, host_pos, ref_table, c.style, c.head_dim));
    return cmp.ok() ? "" : fmt::format("{}: {} of {} wrong, first {}", name, cmp.mismatches, cmp.checked, cmp.first_mismatch);
  };
  auto e = check(q, qo, c.q_heads, "q");
  if (e.empty() && c.k_heads) e = check(k, ko, c.k_heads, "k");
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
  selection.add_to(app);
  app.add_option("--reps", reps, "timed runs per candidate")->check(CLI::Range(5, 100000));
  app.add_option("--out", out_path, "tuning file to update")->capture_default_str();
  app.add_flag("--dry-run", dry_run, "sweep and print, write nothing");
  CLI11_PARSE(app, argc, argv);

  try {
    auto info = device_info();
    if (!info.available) {
      fmt::print(stderr, "ropejit-tune needs a GPU: {}\n", info.reason);
      return 2;
    }
    if (!selection.any()) selection.tokens = {64, 1024, 16384, 65536};
    auto cases = selection.cases();
    double copy = copy_bandwidth_gbps();
    fmt::print("device: {}; copy bandwidth {:.0f} GB/s\n", info.name, copy);
    std::vector<TuningRecord> records;
    for (const auto& c : cases) {
      Data data(c, 64ll << 20);
      RopeOptions base;
      base.style = c.style;
      auto q0 = data.q(0), k0 = data.k(0);
      auto choice = describe_kernel(q0, c.k_heads ? &k0 : nullptr, data.positions(), data.table(), base);
      RopeTable host_table(Backend::host, std::max<int64_t>(c.seq, 4096) + 1, c.head_dim, 500000.0);
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
        Row r{cand, {}, ""};
        try {
          r.error = check_candidate(c, opt, data.table(), host_table.view(), 7 + done);
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
        if (i < 8 || r.config == choice.config)
          fmt::print("  {:<14} {:>10.2f} {:>8.0f} {:>6.1f}%{}{}\n", r.config.key(), r.m.gpu_us, r.m.gbps,
                     100 * r.m.fraction, i == 0 ? "  best" : "", r.config == choice.config ? "  (default)" : "");
      }
      if (!rows.empty() && rows[0].error.empty())
        records.push_back(TuningRecord{info.name, choice.spec_key, token_bucket(c.tokens()), rows[0].config, rows[0].m.gbps});
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
