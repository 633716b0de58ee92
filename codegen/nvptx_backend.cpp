#include "codegen/nvptx_backend.hpp"

#include <fmt/format.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/MC/TargetRegistry.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>

#include <chrono>
#include <map>
#include <mutex>
#include <vector>
#include <utility>
#include <memory>

#include "codegen/llvm_init.hpp"
#include "codegen/optimize.hpp"
#include "core/stats.hpp"
#include "ropejit/core.hpp"

namespace ropejit::codegen {

namespace {
constexpr const char* kTriple = "nvptx64-nvidia-cuda";

std::unique_ptr<llvm::TargetMachine> create_target_machine(const PtxTarget& target) {
  ensure_llvm_initialized();
  if (target.ptx_isa > llvm_max_ptx_isa())
    throw Error(ErrorKind::unsupported, fmt::format("PTX ISA {}.{} requested, but LLVM {} emits at most {}.{}", target.ptx_isa / 10,
                            target.ptx_isa % 10, LLVM_VERSION_MAJOR, llvm_max_ptx_isa() / 10,
                            llvm_max_ptx_isa() % 10));
  std::string error;
  const auto* t = llvm::TargetRegistry::lookupTarget(kTriple, error);
  if (!t) throw Error(ErrorKind::compile, "NVPTX target unavailable in this LLVM: " + error);
  llvm::TargetOptions options;  // no fast-math: sin/cos never approximated, fma only where written
  auto cpu = fmt::format("sm_{}", target.sm);
  auto features = fmt::format("+ptx{}", target.ptx_isa);
  std::unique_ptr<llvm::TargetMachine> tm(t->createTargetMachine(kTriple, cpu, features, options, std::nullopt,
                                                                 std::nullopt, llvm::CodeGenOptLevel::Aggressive));
  if (!tm) throw Error(ErrorKind::compile, fmt::format("LLVM could not create an NVPTX target machine for {} {}", cpu, features));
  return tm;
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

thread_local double t_made_ms = 0;  // machines this thread made since its last generation was recorded

// Target machines are costly to create (a few ms) and not safe to share between threads while
// generating code: a process-wide pool per target, each machine leased to one generation at a time
// (so the one the background warm-up made serves the first kernel of whichever thread comes).
class MachinePool {
 public:
  struct Lease {
    MachinePool* pool;
    std::pair<int, int> key;
    std::unique_ptr<llvm::TargetMachine> tm;
    ~Lease() {
      if (!tm) return;
      std::lock_guard<std::mutex> lock(pool->mutex_);
      pool->free_[key].push_back(std::move(tm));
    }
  };
  Lease lease(const PtxTarget& target) {
    const std::pair<int, int> key{target.sm, target.ptx_isa};
    std::unique_ptr<llvm::TargetMachine> tm;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto& free = free_[key];
      if (!free.empty()) {
        tm = std::move(free.back());
        free.pop_back();
      }
    }
    if (!tm) {
      auto t0 = std::chrono::steady_clock::now();
      tm = create_target_machine(target);
      t_made_ms += ms_since(t0);
    }
    return Lease{this, key, std::move(tm)};
  }

 private:
  std::mutex mutex_;
  std::map<std::pair<int, int>, std::vector<std::unique_ptr<llvm::TargetMachine>>> free_;
};

MachinePool& machines() {
  static auto* pool = new MachinePool;  // never destroyed: a lease may end during static destruction
  return *pool;
}
}  // namespace

int llvm_max_ptx_isa() {
  static_assert(LLVM_VERSION_MAJOR == 19, "kLlvmMaxPtxIsa is LLVM 19's; check it for another LLVM");
  return kLlvmMaxPtxIsa;
}

void configure_nvptx_module(llvm::Module& module, const PtxTarget& target) {
  module.setTargetTriple(kTriple);
  auto lease = machines().lease(target);
  module.setDataLayout(lease.tm->createDataLayout());
}

std::string emit_ptx(llvm::Module& module, const PtxTarget& target, bool record) {
  auto lease = machines().lease(target);
  auto& tm = *lease.tm;
  module.setTargetTriple(kTriple);
  module.setDataLayout(tm.createDataLayout());
  auto t0 = std::chrono::steady_clock::now();
  optimize_module(module, tm);
  const double optimize_ms = ms_since(t0);
  t0 = std::chrono::steady_clock::now();

  llvm::SmallString<0> ptx;
  llvm::raw_svector_ostream os(ptx);
  llvm::legacy::PassManager pm;
  if (tm.addPassesToEmitFile(pm, os, nullptr, llvm::CodeGenFileType::AssemblyFile))
    throw Error(ErrorKind::compile, "the NVPTX backend cannot emit assembly");
  pm.run(module);
  if (record) record_codegen_phases(t_made_ms, optimize_ms, ms_since(t0));
  t_made_ms = 0;
  return std::string(ptx.str());
}

}  // namespace ropejit::codegen
