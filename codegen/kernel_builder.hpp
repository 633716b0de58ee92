// A small kernel-building layer over llvm::IRBuilder, in the spirit of Triton's language.
//
// One kernel body serves two targets. On NVPTX the function is a kernel and program/thread ids are
// %ctaid.x / %tid.x. On the host the same body gets the ids as two trailing parameters and a grid
// entry `<name>_grid(void** params, i64 programs, i32 threads)` loops over every program and thread,
// taking its parameters the way cuLaunchKernel does. Ops write kernels against this class only.
#pragma once

#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Module.h>

#include <functional>
#include <string>
#include <vector>

#include "ropejit/ropejit.hpp"

namespace ropejit::codegen {

enum class Target : uint8_t { nvptx, host };

enum class ParamKind : uint8_t { ptr, i64 };
struct Param {
  std::string name;
  ParamKind kind;
  bool noalias = false;  // a pointer no other parameter aliases
  bool readonly = false;
};

// Cache policy of a global access. Plain hints only: they change speed, never results.
enum class CacheHint : uint8_t {
  normal,
  readonly,  // never written while the kernel runs: NVPTX may use the non-coherent path (ld.global.nc)
  stream,    // touched once: NVPTX 16-byte accesses use ld/st.global.cs (evict first); others plain
};

class KernelBuilder {
 public:
  KernelBuilder(llvm::Module& module, Target target, const std::string& name,
                const std::vector<Param>& params, int max_threads);

  llvm::IRBuilder<>& ir() { return ir_; }
  llvm::LLVMContext& ctx() { return module_.getContext(); }
  Target target() const { return target_; }

  llvm::Value* param(size_t i) const { return params_.at(i); }
  llvm::Value* program_id() const { return program_id_; }  // i64
  llvm::Value* thread_id() const { return thread_id_; }    // i64

  llvm::Value* i64(int64_t v);
  llvm::Value* f32(float v);

  // Pointer to element `index` (i64) of an array of `t` at `base`.
  llvm::Value* element_ptr(DType t, llvm::Value* base, llvm::Value* index);
  // Loads `width` consecutive elements of `t` as <width x float> (or i64 for integer types, width 1).
  // `align` is the alignment in bytes the caller guarantees.
  llvm::Value* load_f32(DType t, llvm::Value* ptr, unsigned width, unsigned align, CacheHint hint);
  // Loads the raw storage (no conversion): <width x iN>, N the element size in bits.
  llvm::Value* load_raw(DType t, llvm::Value* ptr, unsigned width, unsigned align, CacheHint hint);
  void store_raw(llvm::Value* value, llvm::Value* ptr, unsigned align, CacheHint hint);
  // Rounds <width x float> to `t` (round to nearest even) and stores it.
  void store_f32(DType t, llvm::Value* value, llvm::Value* ptr, unsigned align, CacheHint hint);
  // Scalar integer load (i32 or i64 storage), sign-extended to i64.
  llvm::Value* load_index(DType t, llvm::Value* ptr);

  // Conversions between raw storage and f32 vectors; bit-identical on both targets.
  llvm::Value* to_f32(DType t, llvm::Value* raw);
  llvm::Value* from_f32(DType t, llvm::Value* value);

  llvm::Value* fma(llvm::Value* a, llvm::Value* b, llvm::Value* c);
  llvm::Value* splat(unsigned width, llvm::Value* scalar);

  // Control flow. Bodies run with the insertion point inside the new block.
  void if_then(llvm::Value* cond, const std::function<void()>& body);
  // Leaves the kernel (this thread) when cond holds.
  void return_if(llvm::Value* cond);
  // for (i = begin; i < end; i += step) body(i); i64 values.
  void for_range(llvm::Value* begin, llvm::Value* end, int64_t step,
                 const std::function<void(llvm::Value*)>& body);

  // Closes the kernel and, for the host, emits the grid entry. Returns the kernel's symbol name.
  std::string finish();

 private:
  llvm::Value* bf16_from_f32_bits(llvm::Value* value);
  llvm::Type* storage_type(DType t);
  llvm::Type* vector_of(llvm::Type* t, unsigned width);
  void apply_hint(llvm::Instruction* inst, CacheHint hint);
  bool streamed(CacheHint hint, llvm::Type* type) const;
  llvm::Value* global_address(llvm::Value* ptr);
  void emit_host_grid();

  llvm::Module& module_;
  Target target_;
  std::string name_;
  std::vector<Param> param_specs_;
  llvm::IRBuilder<> ir_;
  llvm::Function* fn_ = nullptr;
  std::vector<llvm::Value*> params_;
  llvm::Value* program_id_ = nullptr;
  llvm::Value* thread_id_ = nullptr;
  llvm::BasicBlock* exit_ = nullptr;
};

}  // namespace ropejit::codegen
