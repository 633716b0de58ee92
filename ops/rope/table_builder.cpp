// cos/sin tables made by a generated kernel from phase steps: one program per position, one thread
// per pair, the same sincos_turns as the rotating kernels' exact angles.
#include <fmt/format.h>

#include <cmath>
#include <map>
#include <mutex>

#include "ropejit/language.hpp"
#include "ropejit/rope.hpp"

namespace ropejit {

namespace {
using lang::Builder;
using lang::Value;

const Kernel& table_kernel(DType dtype, int threads) {
  static std::mutex mutex;
  static std::map<std::pair<DType, int>, Kernel> kernels;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = kernels.find({dtype, threads});
  if (it != kernels.end()) return it->second;
  Signature sig{Arg::pointer("steps", DType::i64, true, true), Arg::pointer("cos", dtype, false, true),
                Arg::pointer("sin", dtype, false, true), Arg::int64("pairs"), Arg::float32("factor")};
  Kernel k("ropejit_fill_table", sig, dtype_name(dtype), threads, [](Builder& b) {
    Value pos = b.program_id();
    Value i = b.thread_id();
    Value ok = b.ult(i, b.param("pairs"));
    Value step = b.load(b.param("steps") + i, 1, {.mask = ok});
    auto [s, c] = b.sincos_turns(pos * step);
    Value factor = b.param("factor");
    Value at = pos * b.param("pairs") + i;
    b.store(b.param("cos") + at, c * factor, {.mask = ok});
    b.store(b.param("sin") + at, s * factor, {.mask = ok});
  });
  return kernels.emplace(std::pair{dtype, threads}, std::move(k)).first->second;
}
}  // namespace

CosSinTable fill_table(const Frequencies& f, void* cos, void* sin, DType dtype, int64_t max_position, Backend backend,
                       void* stream, int device) {
  if (!f.phase_steps || reinterpret_cast<uintptr_t>(f.phase_steps) % 8)
    throw Error("fill_table: phase_steps is null or not aligned to 8 bytes");
  if (f.rotary_dim <= 0 || f.rotary_dim % 2 || f.rotary_dim > 512)
    throw Error(fmt::format("fill_table: rotary_dim {} must be even, from 2 to 512", f.rotary_dim));
  if (!std::isfinite(f.attention_factor) || !(f.attention_factor > 0))
    throw Error(fmt::format("fill_table: attention_factor {} must be positive and finite", f.attention_factor));
  if (dtype != DType::f32 && dtype != DType::bf16)
    throw Error(fmt::format("fill_table: dtype {} is not supported: use f32 or bf16", dtype_name(dtype)));
  if (max_position <= 0 || max_position > f.max_position || max_position > INT32_MAX)
    throw Error(fmt::format("fill_table: max_position {} must be from 1 to {}", max_position,
                            std::min<int64_t>(f.max_position, INT32_MAX)));
  if (backend != Backend::cuda && backend != Backend::host)
    throw Error(fmt::format("fill_table: backend {} is neither cuda nor host", int(backend)));
  const uintptr_t align = uintptr_t(dtype_size(dtype));
  if (!cos || !sin || reinterpret_cast<uintptr_t>(cos) % align || reinterpret_cast<uintptr_t>(sin) % align)
    throw Error("fill_table: cos or sin is null or not aligned to its elements");
  const int64_t pairs = f.rotary_dim / 2;
  const uint64_t bytes = uint64_t(max_position) * uint64_t(pairs) * uint64_t(dtype_size(dtype));
  const auto c = reinterpret_cast<uintptr_t>(cos), s = reinterpret_cast<uintptr_t>(sin);
  if (c < s + bytes && s < c + bytes) throw Error("fill_table: cos and sin overlap");
  int threads = 32;
  while (threads < pairs) threads *= 2;
  const Kernel& k = table_kernel(dtype, threads);
  ArgPack args(k.signature());
  args.set("steps", f.phase_steps).set("cos", cos).set("sin", sin).set("pairs", pairs).set("factor", f.attention_factor);
  k.launch(backend, Grid{max_position}, args, stream, device);
  return CosSinTable{cos, sin, dtype, max_position, f.rotary_dim};
}

}  // namespace ropejit
