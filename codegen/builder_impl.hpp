// The state behind lang::Builder: one kernel being built into an llvm::Module for one target.
//
// NVPTX: the kernel takes the signature's parameters; ids are %ctaid.{x,y,z} and %tid.x.
// Host: `<name>_program(params..., pid_x, pid_y, pid_z)` runs all of a program's threads as a loop,
// split into one loop per segment at each reduction (values crossing a split are kept per thread),
// and `<name>_grid(void** params, gx, gy, gz)` runs every program, taking its parameters the way
// cuLaunchKernel does.
#pragma once

#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Module.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "ropejit/language.hpp"

namespace ropejit::lang {

struct Builder::Impl {
  Impl(llvm::Module& module, Target target, const std::string& name, const Signature& signature, int threads);

  // Closes the kernel (and emits the host grid entry); checks the IR. Returns the symbol to look up.
  std::string finish();

  // Values in and out of handles.
  Value wrap(llvm::Value* v, Elem elem, int width, DType pointee = DType::f32);
  Value wrap_like(llvm::Value* v, const Value& like);
  Value constant(llvm::Value* v, Elem elem, int width = 1, DType pointee = DType::f32);
  llvm::Value* use(const Value& v);

  llvm::Type* elem_type(Elem e);
  llvm::Type* type_of(Elem e, int width);
  llvm::Type* storage_type(DType t);
  llvm::LLVMContext& ctx() { return module.getContext(); }
  llvm::BasicBlock* new_block(const char* name) { return llvm::BasicBlock::Create(ctx(), name, fn); }

  // Host thread loops.
  struct Segment {
    llvm::BasicBlock *head, *body, *latch, *after;
    llvm::PHINode* tid;
  };
  void open_segment();
  void close_segment();
  llvm::AllocaInst* per_thread_array(llvm::Type* t, const char* name);
  // for (i = begin; i < end (or > end for a negative step); i += step) body(i), i64, signed compare.
  void counted_loop(llvm::Value* begin, llvm::Value* end, int64_t step, const std::function<void(llvm::Value*)>& body);
  // for (i = 0; i < n; ++i) body(i), outside any thread loop (host reductions).
  void uniform_loop(int64_t n, const std::function<void(llvm::Value*)>& body);

  Value reduce(Value v, int lanes, bool is_max);
  Value reduce_nvptx(Value v, int lanes, bool is_max);
  Value reduce_host(Value v, int lanes, bool is_max);

  llvm::Module& module;
  Target target;
  std::string name;
  const Signature& signature;
  int threads;
  Builder* self = nullptr;
  llvm::IRBuilder<> ir;
  llvm::Function* fn = nullptr;
  llvm::BasicBlock* entry = nullptr;
  llvm::BasicBlock* exit = nullptr;
  std::vector<llvm::Value*> params;
  llvm::Value* pid[3] = {};
  llvm::Value* nvptx_tid = nullptr;

  std::vector<Segment> segments;  // host only
  std::map<llvm::Value*, llvm::AllocaInst*> spills;
  std::map<std::pair<llvm::Value*, int>, llvm::Value*> reloads;
  std::set<llvm::Value*> nested;  // host: made inside an if_then / for_range body
  llvm::AllocaInst* program_done = nullptr;  // host: return_program_if fired (checked after each loop)
  int nesting = 0;           // inside if_then / for_range bodies
  bool thread_returned = false;
  int reductions = 0;
};

}  // namespace ropejit::lang
