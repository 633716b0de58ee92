// ropejit-custom-kernel: a kernel of your own in ropejit's language, through the public API only.
// out = silu(gate) * up = gate / (1 + exp(-gate)) * up over [tokens, dim], bf16 and f32.
// JIT-compiles it, runs it on this CPU (and on the GPU when there is one), checks every element
// against an fp64 loop, and prints the kernel's key and the size of its PTX for sm_90.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "ropejit/ropejit.hpp"

using namespace ropejit;
using lang::Builder;
using lang::Value;

// ---- The kernel ----

constexpr int kThreads = 128;  // per program

// Program (t, j) handles row t, columns [j * threads * width, (j + 1) * threads * width): `width`
// consecutive elements (16 bytes) per thread. `aligned`: dim is a multiple of width, so every row
// starts 16-byte aligned and no vector straddles a row's end.
Kernel silu_mul_kernel(DType dtype, bool aligned) {
  const int width = 16 / dtype_size(dtype);
  Signature sig{Arg::pointer("gate", dtype, /*readonly=*/true), Arg::pointer("up", dtype, /*readonly=*/true),
                Arg::pointer("out", dtype), Arg::int64("dim")};
  // What the body depends on, plus a version: the disk cache's key. Bump v1 whenever the body changes.
  std::string spec = fmt::format("{}.w{}.{}.v1", dtype_name(dtype), width, aligned ? "aligned" : "any");
  return Kernel("silu_mul", sig, spec, kThreads, [=](Builder& b) {
    Value dim = b.param("dim");
    Value col = (b.program_id(1) * b.threads() + b.thread_id()) * width;  // this thread's first column
    b.return_if(col >= dim);  // wholly past the row's end: nothing to do
    Value at = b.program_id(0) * dim + col;
    auto silu_mul = [&](const lang::Access& io) {
      Value g = b.load(b.param("gate") + at, width, io);  // f32 values, whatever the storage
      Value u = b.load(b.param("up") + at, width, io);
      b.store(b.param("out") + at, g / (1.0 + b.exp(-g)) * u, io);  // rounded once to dtype
    };
    if (aligned) {  // one 16-byte access each, streamed: every element is touched once
      silu_mul({.hint = lang::CacheHint::stream});
      return;
    }
    // Rows start anywhere: the accesses assume only the element's alignment, and the vector that
    // straddles the row's end takes a mask per element, col + [0, 1, .., width - 1] < dim.
    const int align = dtype_size(dtype);
    Value whole = col + width <= dim;
    b.if_then(whole, [&] { silu_mul({.align = align}); });
    b.if_then(!whole, [&] {
      Value lane = b.i64(0);  // the constant [0, 1, .., width - 1], doubled as [v, v + n]
      for (int n = 1; n < width; n *= 2) {
        std::vector<int> both(size_t(2 * n));
        std::iota(both.begin(), both.end(), 0);
        lane = b.shuffle(lane, lane + n, both);
      }
      silu_mul({.mask = b.splat(col, width) + lane < dim, .align = align});
    });
  });
}

// ---- Running and checking it ----

constexpr int64_t kPad = 64;  // elements past the output's end, which must stay untouched

struct Case {
  DType dtype;
  int64_t tokens, dim;
  std::vector<uint8_t> gate, up;  // random, never zero
};

Case make_case(DType dtype, int64_t tokens, int64_t dim) {
  Case c{dtype, tokens, dim, std::vector<uint8_t>(size_t(tokens * dim * dtype_size(dtype))), {}};
  c.up = c.gate;
  std::mt19937_64 rng{uint64_t(dim * 16 + dtype_size(dtype))};
  std::uniform_real_distribution<double> dist(-6.0, 6.0);
  for (auto* v : {&c.gate, &c.up})
    for (int64_t i = 0; i < tokens * dim; ++i)
      do store_from_double(dtype, v->data(), i, dist(rng));
      while (load_as_double(dtype, v->data(), i) == 0);
  return c;
}

// The output of one run (host memory), poisoned with 0xff bytes beforehand, plus kPad elements.
std::vector<uint8_t> run(const Kernel& k, const Case& c, Backend backend) {
  const int64_t per_program = kThreads * (16 / dtype_size(c.dtype));  // columns
  Grid grid{c.tokens, (c.dim + per_program - 1) / per_program};
  std::vector<uint8_t> out(c.gate.size() + size_t(kPad * dtype_size(c.dtype)), 0xff);
  ArgPack args(k.signature());
  if (backend == Backend::host) {
    args.set("gate", c.gate.data()).set("up", c.up.data()).set("out", out.data()).set("dim", c.dim);
    k.launch(Backend::host, grid, args);
    return out;
  }
  DeviceBuffer gate(c.gate.size()), up(c.up.size()), dout(out.size());
  gate.upload(c.gate.data(), c.gate.size());
  up.upload(c.up.data(), c.up.size());
  dout.fill(0xff);
  args.set("gate", gate.data()).set("up", up.data()).set("out", dout.data()).set("dim", c.dim);
  k.launch(Backend::cuda, grid, args);
  synchronize();
  dout.download(out.data(), out.size());
  return out;
}

// Every element against fp64. Tolerance: 2^-21 relative for the fp32 arithmetic (8 units of fp32
// rounding), plus for bf16 half an ulp of the output (its one rounding). The padding must still be
// 0xff bytes; on the GPU the bits must equal the host backend's.
bool check(const Case& c, const std::vector<uint8_t>& out, const char* backend, const std::vector<uint8_t>* host) {
  const int64_t n = c.tokens * c.dim;
  int64_t bad = 0;
  double worst = 0;
  for (int64_t i = 0; i < n; ++i) {
    double g = load_as_double(c.dtype, c.gate.data(), i), u = load_as_double(c.dtype, c.up.data(), i);
    double ref = g / (1.0 + std::exp(-g)) * u, got = load_as_double(c.dtype, out.data(), i);
    int e = 0;
    std::frexp(ref, &e);  // |ref| in [2^(e-1), 2^e): a bf16 ulp there is 2^(e-8)
    double tol = 0x1p-21 * std::fabs(ref) + (c.dtype == DType::bf16 ? std::ldexp(1.0, e - 9) : 0.0);
    double err = std::fabs(got - ref) / tol;
    if (!(err <= 1.0) && bad++ == 0)  // NaN (an unwritten 0xff element) fails too
      fmt::print("    first mismatch at [{}, {}]: got {} expected {}\n", i / c.dim, i % c.dim, got, ref);
    worst = std::isnan(err) ? INFINITY : std::max(worst, err);
  }
  const size_t end = c.gate.size();
  bool pad_ok = std::all_of(out.begin() + long(end), out.end(), [](uint8_t x) { return x == 0xff; });
  bool same = !host || std::memcmp(host->data(), out.data(), end) == 0;
  fmt::print("  {} {:<4} [{}, {:>4}]: {} elements, {} outside tolerance (worst {:.4f} of it), padding {}{}\n",
             backend, dtype_name(c.dtype), c.tokens, c.dim, n, bad, worst, pad_ok ? "untouched" : "WRITTEN",
             host ? (same ? ", same bits as host" : ", bits DIFFER from host") : "");
  return bad == 0 && pad_ok && same;
}

int main() {
  try {
    const DeviceInfo gpu = device_info();
    fmt::print("silu_mul: out = gate / (1 + exp(-gate)) * up, [tokens, dim]; GPU: {}\n",
               gpu.available ? gpu.name : "none (" + gpu.reason + "), host backend only");
    bool ok = true;
    for (DType t : {DType::bf16, DType::f32}) {
      // Defined once, launched for any shape: compiled on first launch per backend.
      Kernel aligned = silu_mul_kernel(t, true), any = silu_mul_kernel(t, false);
      if (t == DType::bf16) {
        std::string ptx = aligned.ptx(90);
        fmt::print("kernel {}: PTX for sm_90, generated on this machine: {} lines\n", aligned.key(),
                   std::count(ptx.begin(), ptx.end(), '\n'));
      }
      // 4096: no tail; 1000: programs partly past the row's end; 333: unaligned rows, a vector straddling the end.
      for (int64_t dim : {4096, 1000, 333}) {
        const Kernel& k = dim % (16 / dtype_size(t)) == 0 ? aligned : any;
        Case c = make_case(t, 7, dim);
        std::vector<uint8_t> host = run(k, c, Backend::host);
        ok = check(c, host, "host", nullptr) && ok;
        if (gpu.available) ok = check(c, run(k, c, Backend::cuda), "cuda", &host) && ok;
      }
    }
    fmt::print("{}\n", ok ? "all checks passed" : "FAILED");
    return ok ? 0 : 1;
  } catch (const Error& e) {
    fmt::print(stderr, "error ({}): {}\n", error_kind_name(e.kind()), e.what());
    return 2;
  }
}
