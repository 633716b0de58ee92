#include "codegen/llvm_init.hpp"

#include <llvm/Support/TargetSelect.h>

#include <mutex>

namespace ropejit::codegen {

void ensure_llvm_initialized() {
  static std::once_flag once;
  std::call_once(once, [] {
    LLVMInitializeNVPTXTargetInfo();
    LLVMInitializeNVPTXTarget();
    LLVMInitializeNVPTXTargetMC();
    LLVMInitializeNVPTXAsmPrinter();
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
  });
}

}  // namespace ropejit::codegen
