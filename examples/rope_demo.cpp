// ropejit-demo: RoPE for a Llama-3-8B shape (32 q heads, 8 k heads, head_dim 128, theta 500000,
// bf16, 4 x 4096 tokens). JIT-compiles, applies, checks every element against the fp64 reference and
// prints the device, compile time, kernel time and bandwidth. Without a GPU it says so and runs the
// CPU backend. Uses only the public API.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <chrono>
#include <cstring>
#include <random>

#include "ropejit/ropejit.hpp"

using namespace ropejit;

namespace {

struct Shape {
  int64_t batch = 4, seq = 4096, q_heads = 32, k_heads = 8, head_dim = 128;
  double theta = 500000.0;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::vector<uint16_t> random_bf16(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  std::vector<uint16_t> v(n);
  for (auto& x : v) x = float_to_bf16(u(rng));
  return v;
}

// Checks `out` (host, BSHD) against the fp64 reference of `in`, a block of tokens at a time so the
// reference never holds more than a few MB.
bool check(const Shape& s, int64_t heads, const std::vector<uint16_t>& in, const std::vector<uint16_t>& out,
           const ReferenceTable& table, int64_t offset, const char* name) {
  const int64_t block = 256;
  int64_t bad = 0, checked = 0;
  double worst = 0;
  std::string first;
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t s0 = 0; s0 < s.seq; s0 += block) {
      int64_t n = std::min(block, s.seq - s0);
      size_t at = size_t((b * s.seq + s0) * heads * s.head_dim);
      auto view_in = TensorView::bshd(const_cast<uint16_t*>(in.data() + at), DType::bf16, 1, n, heads, s.head_dim);
      auto view_out = TensorView::bshd(const_cast<uint16_t*>(out.data() + at), DType::bf16, 1, n, heads, s.head_dim);
      auto ref = reference_rope(view_in, Positions::contiguous(offset + s0), table, RopeStyle::neox, s.head_dim);
      auto c = compare_to_reference(view_out, ref);
      bad += c.mismatches;
      checked += c.checked;
      worst = std::max(worst, c.max_error_in_tolerances);
      if (first.empty()) first = c.first_mismatch;
    }
  fmt::print("  check {}: {} elements against the fp64 reference, {} outside tolerance, worst error {:.2f} of "
             "tolerance (half a bf16 ulp + fp32 arithmetic){}\n",
             name, checked, bad, worst, bad ? ", first: " + first : "");
  return bad == 0 && checked > 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ropejit-demo: JIT RoPE for a Llama-3-8B shape, checked against the fp64 reference"};
  std::string backend_name = "auto";
  Shape s;
  int reps = 50;
  app.add_option("--backend", backend_name, "cuda, cpu, or auto (cuda when a GPU is usable)")
      ->check(CLI::IsMember({"auto", "cuda", "cpu"}));
  app.add_option("--batch", s.batch, "sequences")->check(CLI::PositiveNumber);
  app.add_option("--seq", s.seq, "tokens per sequence")->check(CLI::PositiveNumber);
  app.add_option("--reps", reps, "timed repetitions (GPU)")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);

  try {
    auto info = device_info();
    Backend backend = Backend::host;
    if (backend_name == "cuda" || (backend_name == "auto" && info.available)) {
      if (!info.available) throw Error("--backend cuda: " + info.reason);
      backend = Backend::cuda;
      fmt::print("device: {} (sm_{}, {} SMs), driver {}.{}, PTX ISA {}.{}\n", info.name, info.sm,
                 info.multiprocessors, info.driver_version / 1000, info.driver_version % 1000 / 10, info.ptx_isa / 10,
                 info.ptx_isa % 10);
    } else {
      if (info.available)
        fmt::print("--backend cpu: ");
      else
        fmt::print("no GPU ({})\n", info.reason);
      fmt::print("running the CPU backend (the same kernel IR, compiled for this CPU with LLVM ORC)\n");
    }
    const int64_t tokens = s.batch * s.seq;
    fmt::print("shape: Llama-3-8B, {} x {} tokens, {} q heads, {} k heads, head_dim {}, theta {}, bf16, NeoX, in place\n",
               s.batch, s.seq, s.q_heads, s.k_heads, s.head_dim, s.theta);

    const size_t q_elems = size_t(tokens * s.q_heads * s.head_dim), k_elems = size_t(tokens * s.k_heads * s.head_dim);
    auto q_host = random_bf16(q_elems, 1), k_host = random_bf16(k_elems, 2);
    const int64_t offset = 7;  // positions 7 .. 7 + seq - 1 in every sequence
    RopeTable table(backend, s.seq + offset, s.head_dim, s.theta, DType::f32);
    CosSinTable host_table = table.view();
    host_table.cos = table.host_cos().data();
    host_table.sin = table.host_sin().data();
    auto ref_table = ReferenceTable::from(host_table);

    RopeOptions opt;
    opt.backend = backend;
    std::vector<uint16_t> q_out = q_host, k_out = k_host;
    const double bytes = 2.0 * double(q_elems + k_elems) * 2 + double(tokens) * double(s.head_dim / 2) * 4 * 2;

    if (backend == Backend::cuda) {
      DeviceBuffer q(q_elems * 2), k(k_elems * 2);
      q.upload(q_host.data(), q_elems * 2);
      k.upload(k_host.data(), k_elems * 2);
      auto qv = TensorView::bshd(q.data(), DType::bf16, s.batch, s.seq, s.q_heads, s.head_dim);
      auto kv = TensorView::bshd(k.data(), DType::bf16, s.batch, s.seq, s.k_heads, s.head_dim);
      auto t0 = std::chrono::steady_clock::now();
      apply_rope(qv, &kv, Positions::contiguous(offset), table.view(), opt);
      synchronize();
      double first_call = seconds_since(t0);
      auto st = stats();
      if (st.kernels_generated)
        fmt::print("JIT: first call {:.1f} ms (LLVM IR -> PTX {:.1f} ms, driver PTX -> cubin {:.1f} ms, load {:.2f} ms; "
                   "cached on disk for the next process)\n",
                   first_call * 1e3, st.last_codegen_ms, st.last_link_ms, st.last_load_ms);
      else
        fmt::print("JIT: first call {:.1f} ms, kernel from the {} (load {:.2f} ms, no code generation)\n",
                   first_call * 1e3, st.bundle_hits ? "bundle" : st.disk_cubin_hits ? "disk cache (cubin)" : "disk cache (PTX)",
                   st.last_load_ms);
      q.download(q_out.data(), q_elems * 2);
      k.download(k_out.data(), k_elems * 2);
      bool ok = check(s, s.q_heads, q_host, q_out, ref_table, offset, "q") &
                check(s, s.k_heads, k_host, k_out, ref_table, offset, "k");

      // Timing: in place again and again (inputs 160 MB, over the L2), median of the event times.
      auto ms = time_gpu_ms([&] { apply_rope(qv, &kv, Positions::contiguous(offset), table.view(), opt); }, 5, reps);
      double med = ms[ms.size() / 2];
      // Copy bandwidth in the same run: a 1 GiB device-to-device copy, bytes read plus written.
      const size_t copy_bytes = size_t(1) << 30;
      DeviceBuffer a(copy_bytes), b(copy_bytes);
      a.fill(1);
      auto cms = time_gpu_ms([&] { b.copy_from(a, copy_bytes); }, 3, 20);
      double copy_bw = 2.0 * double(copy_bytes) / (cms[cms.size() / 2] * 1e-3);
      double bw = bytes / (med * 1e-3);
      fmt::print("kernel: {:.1f} us median of {} ({:.1f} .. {:.1f}), {:.0f} GB/s moved = {:.1f}% of the device copy "
                 "bandwidth ({:.0f} GB/s)\n",
                 med * 1e3, reps, ms.front() * 1e3, ms.back() * 1e3, bw / 1e9, 100.0 * bw / copy_bw, copy_bw / 1e9);
      fmt::print("{}\n", ok ? "PASS" : "FAIL");
      return ok ? 0 : 1;
    }

    auto qv = TensorView::bshd(q_out.data(), DType::bf16, s.batch, s.seq, s.q_heads, s.head_dim);
    auto kv = TensorView::bshd(k_out.data(), DType::bf16, s.batch, s.seq, s.k_heads, s.head_dim);
    auto t0 = std::chrono::steady_clock::now();
    apply_rope(qv, &kv, Positions::contiguous(offset), table.view(), opt);
    double first_call = seconds_since(t0);
    auto st = stats();
    t0 = std::chrono::steady_clock::now();
    apply_rope(qv, &kv, Positions::contiguous(offset), table.view(), opt);  // a second pass, timed alone
    double run = seconds_since(t0);
    std::copy(q_host.begin(), q_host.end(), q_out.begin());
    std::copy(k_host.begin(), k_host.end(), k_out.begin());
    apply_rope(qv, &kv, Positions::contiguous(offset), table.view(), opt);
    fmt::print("JIT: first call {:.1f} ms (LLVM IR -> host code {:.1f} ms)\n", first_call * 1e3, st.last_codegen_ms);
    fmt::print("CPU backend: {:.1f} ms per call on one core, {:.2f} GB/s\n", run * 1e3, bytes / run / 1e9);
    bool ok = check(s, s.q_heads, q_host, q_out, ref_table, offset, "q") &
              check(s, s.k_heads, k_host, k_out, ref_table, offset, "k");
    fmt::print("{}\n", ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
  } catch (const Error& e) {
    fmt::print(stderr, "ropejit-demo: {}\n", e.what());
    return 1;
  }
}
