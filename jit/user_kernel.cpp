// ropejit::Kernel: a user's kernel through the same pipeline as the ops (memory -> bundles -> disk ->
// generation), one compiled form per backend and context.
#include <fmt/format.h>

#include <cstring>

#include "jit/precompile.hpp"
#include "jit/store.hpp"
#include "ropejit/aot.hpp"

namespace ropejit {

struct Kernel::Impl {
  jit::KernelDef def;
  // One entry per (backend, context); the op key is empty: the kernel is one definition.
  struct NoKey {
    bool operator==(const NoKey&) const = default;
  };
  struct NoKeyHash {
    size_t operator()(const NoKey&) const { return 0; }
  };
  mutable jit::KernelCache<NoKey, NoKeyHash> cache;
};

Kernel::Kernel(std::string name, Signature signature, std::string spec_key, int threads,
               std::function<void(lang::Builder&)> body)
    : impl_(std::make_unique<Impl>()) {
  if (name.empty()) throw Error("Kernel: empty name");
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
      throw Error(fmt::format("Kernel: name '{}' has a character other than letters, digits and '_'", name));
  if (threads < 1 || threads > 1024 || (threads & (threads - 1)))
    throw Error(fmt::format("Kernel {}: {} threads per program: a power of two from 1 to 1024 is needed", name, threads));
  if (!body) throw Error(fmt::format("Kernel {}: no body", name));
  for (char c : spec_key)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || (c != 0 && std::strchr("._-+=,:", c))))
      throw Error(fmt::format("Kernel {}: spec_key '{}' has a character other than letters, digits and ._-+=,:", name,
                              spec_key));
  impl_->def.key = fmt::format("{}.{}.t{}", name, spec_key, threads);
  impl_->def.signature = std::move(signature);
  impl_->def.threads = threads;
  impl_->def.body = std::move(body);
}

Kernel::~Kernel() = default;
Kernel::Kernel(Kernel&&) noexcept = default;
Kernel& Kernel::operator=(Kernel&&) noexcept = default;

const Signature& Kernel::signature() const { return impl_->def.signature; }
std::string Kernel::key() const { return impl_->def.key; }

void Kernel::launch(Backend backend, Grid grid, ArgPack& args, void* stream, int device) const {
  if (&args.signature() != &impl_->def.signature && args.signature().describe() != impl_->def.signature.describe())
    throw Error(fmt::format("kernel {}: the arguments were packed for another signature", impl_->def.key));
  args.check_complete();
  if (grid.x < 1 || grid.y < 1 || grid.z < 1) throw Error(fmt::format("kernel {}: an empty grid", impl_->def.key));
  auto where = jit::call_device(backend, device);
  const auto& k = impl_->cache.get(backend, where.ctx, Impl::NoKey{}, [&] { return impl_->def; }, stream);
  jit::launch(k, backend, grid, args, stream);
}

std::string Kernel::ptx(int sm) const {
  auto kernels = jit::precompile_defs({impl_->def}, {sm});
  return kernels.at(0).ptx;
}

std::vector<PrecompiledKernel> precompile(const Kernel& kernel, const std::vector<int>& sms) {
  return jit::precompile_defs({kernel.impl_->def}, sms);
}

}  // namespace ropejit
