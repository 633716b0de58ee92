#include "ops/rope/compile.hpp"

#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

#include <chrono>
#include <memory>

#include "codegen/host_backend.hpp"
#include "codegen/nvptx_backend.hpp"
#include "ops/rope/kernel_gen.hpp"
#include "ops/stats.hpp"

namespace ropejit::rope {

namespace {
double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

std::string generate_ptx(const RopeSpec& spec, const LaunchConfig& config, const codegen::PtxTarget& target) {
  auto t0 = std::chrono::steady_clock::now();
  llvm::LLVMContext ctx;
  llvm::Module module(kernel_symbol(spec, config), ctx);
  codegen::configure_nvptx_module(module, target);
  generate_rope_kernel(module, codegen::Target::nvptx, spec, config, kernel_symbol(spec, config));
  std::string ptx = codegen::emit_ptx(module, target);
  record_codegen(ms_since(t0));
  return ptx;
}

codegen::HostGridFn generate_host(const RopeSpec& spec, const LaunchConfig& config) {
  auto t0 = std::chrono::steady_clock::now();
  auto ctx = std::make_unique<llvm::LLVMContext>();
  auto module = std::make_unique<llvm::Module>(kernel_symbol(spec, config), *ctx);
  codegen::configure_host_module(*module);
  auto symbol = generate_rope_kernel(*module, codegen::Target::host, spec, config, kernel_symbol(spec, config));
  auto fn = codegen::compile_host(std::move(ctx), std::move(module), symbol);
  record_codegen(ms_since(t0));
  return fn;
}

}  // namespace ropejit::rope
