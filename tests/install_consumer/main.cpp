// Built outside ropejit's tree against an installed ropejit (CTest's install_consumer): applies RoPE
// on the host backend to small random q and k and checks them against the public fp64 reference.
// With CONSUMER_RUNTIME (libropejit_runtime, no LLVM) the reference still works and the host backend
// is refused with an `unsupported` error. Exits non-zero on any mismatch.
#include <ropejit/ropejit.hpp>
#include <ropejit/testing.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

using namespace ropejit;

namespace {

std::vector<uint8_t> random_tensor(DType dtype, int64_t n, std::mt19937_64& rng) {
  std::vector<uint8_t> bytes(size_t(n) * dtype_size(dtype));
  std::uniform_real_distribution<double> u(-2.0, 2.0);
  for (int64_t i = 0; i < n; ++i) store_from_double(dtype, bytes.data(), i, u(rng));
  return bytes;
}

// One call: q [2, 5, 4, 64] and k [2, 5, 2, 64], rotary_dim `rot` of 64, positions from an offset.
bool check(RopeStyle style, DType dtype, int64_t rot, uint64_t seed) {
  const int64_t batch = 2, seq = 5, qh = 4, kh = 2, dim = 64, offset = 7;
  std::mt19937_64 rng(seed);
  auto q = random_tensor(dtype, batch * seq * qh * dim, rng);
  auto k = random_tensor(dtype, batch * seq * kh * dim, rng);
  auto qv = TensorView::bshd(q.data(), dtype, batch, seq, qh, dim);
  auto kv = TensorView::bshd(k.data(), dtype, batch, seq, kh, dim);
  auto positions = Positions::contiguous(offset);
  RopeTable table(Backend::host, 64, rot, 10000.0, DType::f32);
  auto ref_table = ReferenceTable::from(table.view());
  auto q_ref = reference_rope(qv, positions, ref_table, style, rot);
  auto k_ref = reference_rope(kv, positions, ref_table, style, rot);

  RopeOptions opt;
  opt.style = style;
  opt.rotary_dim = rot;
  opt.backend = Backend::host;
#ifdef CONSUMER_RUNTIME
  try {
    apply_rope(qv, &kv, positions, table.view(), opt);
    std::printf("FAIL: the runtime ran the host backend, which needs LLVM\n");
    return false;
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::unsupported) {
      std::printf("FAIL: expected an unsupported error, got %s: %s\n", error_kind_name(e.kind()), e.what());
      return false;
    }
  }
  // Nothing ran: the reference against itself must pass (and an untouched q must not, for rot > 0).
  auto q_untouched = compare_to_reference(qv, q_ref);
  bool ok = !q_untouched.ok();
  std::printf("%s runtime: host backend refused (unsupported); unrotated q %s the reference\n", ok ? "ok" : "FAIL",
              ok ? "differs from" : "matches");
  return ok;
#else
  apply_rope(qv, &kv, positions, table.view(), opt);
  auto cq = compare_to_reference(qv, q_ref);
  auto ck = compare_to_reference(kv, k_ref);
  bool ok = cq.ok() && ck.ok();
  std::printf("%s %s %s rotary_dim %lld: q %lld checked, %lld off; k %lld checked, %lld off; worst %.3f tolerances %s%s\n",
              ok ? "ok" : "FAIL", style == RopeStyle::neox ? "neox" : "gptj", dtype_name(dtype), (long long)rot,
              (long long)cq.checked, (long long)cq.mismatches, (long long)ck.checked, (long long)ck.mismatches,
              std::max(cq.max_error_in_tolerances, ck.max_error_in_tolerances), cq.first_mismatch.c_str(),
              ck.first_mismatch.c_str());
  return ok;
#endif
}

}  // namespace

int main() {
  bool ok = true;
  uint64_t seed = 1;
  for (RopeStyle style : {RopeStyle::neox, RopeStyle::gptj})
    for (DType dtype : {DType::f32, DType::bf16}) ok = check(style, dtype, 64, seed++) && ok;
  ok = check(RopeStyle::neox, DType::f16, 32, seed++) && ok;
  std::printf("install consumer: %s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
