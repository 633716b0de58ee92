#include "codegen/host_backend.hpp"

#include <llvm/ExecutionEngine/Orc/ExecutionUtils.h>
#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/Support/Error.h>

#include <mutex>

#include "codegen/llvm_init.hpp"
#include "codegen/optimize.hpp"
#include "ropejit/core.hpp"

namespace ropejit::codegen {

namespace {

template <typename T>
T unwrap(llvm::Expected<T> value, const char* what) {
  if (!value) throw Error(ErrorKind::compile, std::string(what) + ": " + llvm::toString(value.takeError()));
  return std::move(*value);
}

struct HostJit {
  llvm::orc::JITTargetMachineBuilder jtmb;
  std::unique_ptr<llvm::TargetMachine> tm;  // for the O3 pipeline; guarded by mutex
  std::unique_ptr<llvm::orc::LLJIT> jit;
  std::mutex mutex;

  HostJit() : jtmb(unwrap(llvm::orc::JITTargetMachineBuilder::detectHost(), "detecting the host CPU")) {
    jtmb.setCodeGenOptLevel(llvm::CodeGenOptLevel::Aggressive);
    tm = unwrap(jtmb.createTargetMachine(), "creating the host target machine");
    jit = unwrap(llvm::orc::LLJITBuilder().setJITTargetMachineBuilder(jtmb).create(), "creating the ORC JIT");
    // libgcc's f16 helpers, where the CPU lacks F16C.
    jit->getMainJITDylib().addGenerator(
        unwrap(llvm::orc::DynamicLibrarySearchGenerator::GetForCurrentProcess(jit->getDataLayout().getGlobalPrefix()),
               "searching the process's symbols"));
  }

  static HostJit& get() {
    ensure_llvm_initialized();
    static HostJit instance;
    return instance;
  }
};

}  // namespace

void configure_host_module(llvm::Module& module) {
  auto& h = HostJit::get();
  module.setTargetTriple(h.jtmb.getTargetTriple().str());
  module.setDataLayout(h.jit->getDataLayout());
}

HostGridFn compile_host(std::unique_ptr<llvm::LLVMContext> ctx, std::unique_ptr<llvm::Module> module,
                        const std::string& symbol) {
  auto& h = HostJit::get();
  std::lock_guard<std::mutex> lock(h.mutex);
  module->setTargetTriple(h.jtmb.getTargetTriple().str());
  module->setDataLayout(h.jit->getDataLayout());
  optimize_module(*module, *h.tm);
  if (auto err = h.jit->addIRModule(llvm::orc::ThreadSafeModule(std::move(module), std::move(ctx))))
    throw Error(ErrorKind::compile, "adding a kernel to the host JIT: " + llvm::toString(std::move(err)));
  auto addr = unwrap(h.jit->lookup(symbol), "looking up the host kernel");
  return addr.toPtr<HostGridFn>();
}

}  // namespace ropejit::codegen
