#include "jit/compile.hpp"

#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

#include <atomic>
#include <chrono>
#include <memory>

#include "codegen/builder_impl.hpp"
#include "codegen/host_backend.hpp"
#include "codegen/nvptx_backend.hpp"
#include "core/stats.hpp"

namespace ropejit::jit {

namespace {
double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// Runs the definition's body into `module` under `name`; returns the symbol to look up.
std::string build(const KernelDef& def, llvm::Module& module, lang::Target target, const std::string& name) {
  if (!def.body) throw Error(ErrorKind::internal, "kernel " + def.key + " has no body");
  lang::Builder::Impl impl(module, target, name, def.signature, def.threads);
  lang::Builder b(&impl);
  impl.self = &b;
  def.body(b);
  return impl.finish();
}
}  // namespace

std::string generate_ptx(const KernelDef& def, const codegen::PtxTarget& target) {
  auto t0 = std::chrono::steady_clock::now();
  llvm::LLVMContext ctx;
  llvm::Module module(def.symbol(), ctx);
  codegen::configure_nvptx_module(module, target);
  build(def, module, lang::Target::nvptx, def.symbol());
  std::string ptx = codegen::emit_ptx(module, target);
  record_codegen(ms_since(t0));
  return ptx;
}

codegen::HostGridFn generate_host(const KernelDef& def) {
  auto t0 = std::chrono::steady_clock::now();
  auto ctx = std::make_unique<llvm::LLVMContext>();
  auto module = std::make_unique<llvm::Module>(def.symbol(), *ctx);
  codegen::configure_host_module(*module);
  // One process-wide JIT holds every host kernel: each build gets a name of its own (two Kernel
  // objects may share a key, and keys differing only in '.' and '_' share a symbol).
  static std::atomic<uint64_t> builds{0};
  auto symbol = build(def, *module, lang::Target::host, def.symbol() + "_h" + std::to_string(builds++));
  auto fn = codegen::compile_host(std::move(ctx), std::move(module), symbol);
  record_codegen(ms_since(t0));
  return fn;
}

}  // namespace ropejit::jit
