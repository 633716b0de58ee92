// ropejit-embedded-demo: RoPE with no LLVM and no code generation at all. It links
// libropejit_runtime (no LLVM inside) and a bundle that ropejit-precompile embedded as C++ source at
// build time (the Llama-3-8B spec for sm_80/86/89/90, PTX and cubins). Uses only the public API.
#include <fmt/format.h>

#include <random>

#include "ropejit/ropejit.hpp"

extern "C" unsigned long ropejit_bundle_llama();

using namespace ropejit;

int main() {
  fmt::print("embedded bundle: {} kernels ({} registered)\n", ropejit_bundle_llama(), bundled_kernel_count());
  auto info = device_info();
  if (!info.available) {
    fmt::print("no GPU ({}): SKIPPED running; the bundle is linked and registered\n", info.reason);
    return bundled_kernel_count() > 0 ? 77 : 1;  // 77: skipped, for CTest
  }
  try {
    const int64_t batch = 2, seq = 1024, hq = 32, hk = 8, d = 128;
    std::mt19937_64 rng(3);
    std::uniform_real_distribution<float> u(-2.0f, 2.0f);
    std::vector<uint16_t> q(size_t(batch * seq * hq * d)), k(size_t(batch * seq * hk * d));
    for (auto& x : q) x = float_to_bf16(u(rng));
    for (auto& x : k) x = float_to_bf16(u(rng));
    DeviceBuffer dq(q.size() * 2), dk(k.size() * 2);
    dq.upload(q.data(), q.size() * 2);
    dk.upload(k.data(), k.size() * 2);
    RopeTable table(Backend::cuda, 4096, d, 500000.0);
    auto qv = TensorView::bshd(dq.data(), DType::bf16, batch, seq, hq, d);
    auto kv = TensorView::bshd(dk.data(), DType::bf16, batch, seq, hk, d);
    RopeOptions opt;
    apply_rope(qv, &kv, Positions::contiguous(10), table.view(), opt);
    synchronize();
    auto st = stats();
    std::vector<uint16_t> qo(q.size());
    dq.download(qo.data(), qo.size() * 2);
    CosSinTable host_table = table.view();
    host_table.cos = table.host_cos().data();
    host_table.sin = table.host_sin().data();
    auto ref = reference_rope(TensorView::bshd(q.data(), DType::bf16, batch, seq, hq, d), Positions::contiguous(10),
                              ReferenceTable::from(host_table), RopeStyle::neox, d);
    auto cmp = compare_to_reference(TensorView::bshd(qo.data(), DType::bf16, batch, seq, hq, d), ref);
    fmt::print("{} (sm_{}): bundle hits {}, code generations {}, module load {:.2f} ms; q: {} of {} elements "
               "within tolerance\n",
               info.name, info.sm, st.bundle_hits, st.kernels_generated, st.last_load_ms, cmp.checked - cmp.mismatches,
               cmp.checked);
    // A spec the bundle lacks: a clear error naming it, nothing written.
    auto q64 = TensorView::bshd(dq.data(), DType::bf16, batch, seq, hq, 64);
    RopeTable table64(Backend::cuda, 4096, 64);
    try {
      apply_rope(q64, nullptr, Positions::contiguous(0), table64.view(), opt);
      fmt::print("FAIL: a spec outside the bundle ran\n");
      return 1;
    } catch (const Error& e) {
      fmt::print("a spec outside the bundle: {}\n", e.what());
    }
    bool ok = cmp.ok() && st.kernels_generated == 0 && st.bundle_hits >= 1;
    fmt::print("{}\n", ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
  } catch (const Error& e) {
    fmt::print(stderr, "ropejit-embedded-demo: {}\n", e.what());
    return 1;
  }
}
