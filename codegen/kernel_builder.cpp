#include "codegen/kernel_builder.hpp"

#include <llvm/IR/InlineAsm.h>
#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/IntrinsicsNVPTX.h>
#include <llvm/IR/MDBuilder.h>

namespace ropejit::codegen {

using llvm::Value;

KernelBuilder::KernelBuilder(llvm::Module& module, Target target, const std::string& name,
                             const std::vector<Param>& params, int max_threads)
    : module_(module), target_(target), name_(name), param_specs_(params), ir_(module.getContext()) {
  auto& c = ctx();
  std::vector<llvm::Type*> types;
  for (const auto& p : params)
    types.push_back(p.kind == ParamKind::ptr ? static_cast<llvm::Type*>(ir_.getPtrTy()) : ir_.getInt64Ty());
  if (target == Target::host) {  // program and thread ids arrive as arguments on the host
    types.push_back(ir_.getInt64Ty());
    types.push_back(ir_.getInt64Ty());
  }
  auto* fty = llvm::FunctionType::get(ir_.getVoidTy(), types, false);
  auto linkage = target == Target::host ? llvm::Function::InternalLinkage : llvm::Function::ExternalLinkage;
  fn_ = llvm::Function::Create(fty, linkage, target == Target::host ? name + "_body" : name, module);
  fn_->addFnAttr(llvm::Attribute::NoUnwind);
  if (target == Target::host) fn_->addFnAttr(llvm::Attribute::AlwaysInline);
  for (size_t i = 0; i < params.size(); ++i) {
    auto* arg = fn_->getArg(i);
    arg->setName(params[i].name);
    if (params[i].kind != ParamKind::ptr) continue;
    if (params[i].noalias) arg->addAttr(llvm::Attribute::NoAlias);
    if (params[i].readonly) arg->addAttr(llvm::Attribute::ReadOnly);
  }
  for (size_t i = 0; i < params.size(); ++i) params_.push_back(fn_->getArg(i));

  auto* entry = llvm::BasicBlock::Create(c, "entry", fn_);
  exit_ = llvm::BasicBlock::Create(c, "exit", fn_);
  ir_.SetInsertPoint(entry);
  if (target == Target::nvptx) {
    auto read = [&](llvm::Intrinsic::ID id) {
      return ir_.CreateZExt(ir_.CreateIntrinsic(id, {}, {}), ir_.getInt64Ty());
    };
    program_id_ = read(llvm::Intrinsic::nvvm_read_ptx_sreg_ctaid_x);
    thread_id_ = read(llvm::Intrinsic::nvvm_read_ptx_sreg_tid_x);
    // Kernel marker and launch bound (NVPTX in LLVM 19 reads both from nvvm.annotations).
    auto* md = module.getOrInsertNamedMetadata("nvvm.annotations");
    auto* i32 = ir_.getInt32Ty();
    md->addOperand(llvm::MDNode::get(c, {llvm::ValueAsMetadata::get(fn_), llvm::MDString::get(c, "kernel"),
                                         llvm::ConstantAsMetadata::get(llvm::ConstantInt::get(i32, 1))}));
    md->addOperand(llvm::MDNode::get(c, {llvm::ValueAsMetadata::get(fn_), llvm::MDString::get(c, "maxntidx"),
                                         llvm::ConstantAsMetadata::get(llvm::ConstantInt::get(i32, max_threads))}));
  } else {
    program_id_ = fn_->getArg(params.size());
    thread_id_ = fn_->getArg(params.size() + 1);
  }
}

Value* KernelBuilder::i64(int64_t v) { return ir_.getInt64(static_cast<uint64_t>(v)); }
Value* KernelBuilder::f32(float v) { return llvm::ConstantFP::get(ir_.getFloatTy(), v); }

llvm::Type* KernelBuilder::storage_type(DType t) {
  switch (t) {
    case DType::f32: return ir_.getFloatTy();
    case DType::f16:
    case DType::bf16: return ir_.getInt16Ty();
    case DType::i32: return ir_.getInt32Ty();
    case DType::i64: return ir_.getInt64Ty();
  }
  return nullptr;
}

llvm::Type* KernelBuilder::vector_of(llvm::Type* t, unsigned width) {
  return llvm::FixedVectorType::get(t, width);
}

Value* KernelBuilder::element_ptr(DType t, Value* base, Value* index) {
  return ir_.CreateGEP(storage_type(t), base, index);
}

void KernelBuilder::apply_hint(llvm::Instruction* inst, CacheHint hint) {
  // !invariant.load lets NVPTX select ld.global.nc; the host ignores it.
  if (hint == CacheHint::readonly && llvm::isa<llvm::LoadInst>(inst))
    inst->setMetadata(llvm::LLVMContext::MD_invariant_load, llvm::MDNode::get(ctx(), {}));
}

bool KernelBuilder::streamed(CacheHint hint, llvm::Type* type) const {
  return hint == CacheHint::stream && target_ == Target::nvptx &&
         module_.getDataLayout().getTypeStoreSize(type) == 16;
}

Value* KernelBuilder::global_address(Value* ptr) {
  // The .cs forms take a global address: cvta.to.global, as NVPTX lowers this cast.
  return ir_.CreatePtrToInt(ir_.CreateAddrSpaceCast(ptr, llvm::PointerType::get(ctx(), 1)), ir_.getInt64Ty());
}

Value* KernelBuilder::load_raw(DType t, Value* ptr, unsigned width, unsigned align, CacheHint hint) {
  auto* type = vector_of(storage_type(t), width);
  if (streamed(hint, type)) {
    auto* i32 = ir_.getInt32Ty();
    auto* ret = llvm::StructType::get(ctx(), {i32, i32, i32, i32});
    auto* asm_fn = llvm::InlineAsm::get(llvm::FunctionType::get(ret, {ir_.getInt64Ty()}, false),
                                        "ld.global.cs.v4.b32 {$0, $1, $2, $3}, [$4];", "=r,=r,=r,=r,l,~{memory}",
                                        /*hasSideEffects=*/true);
    auto* parts = ir_.CreateCall(asm_fn, {global_address(ptr)});
    Value* v = llvm::PoisonValue::get(vector_of(i32, 4));
    for (unsigned i = 0; i < 4; ++i) v = ir_.CreateInsertElement(v, ir_.CreateExtractValue(parts, i), i);
    return ir_.CreateBitCast(v, type);
  }
  auto* load = ir_.CreateAlignedLoad(type, ptr, llvm::Align(align));
  apply_hint(load, hint);
  return load;
}

void KernelBuilder::store_raw(Value* value, Value* ptr, unsigned align, CacheHint hint) {
  if (streamed(hint, value->getType())) {
    auto* i32 = ir_.getInt32Ty();
    Value* v = ir_.CreateBitCast(value, vector_of(i32, 4));
    auto* asm_fn = llvm::InlineAsm::get(
        llvm::FunctionType::get(ir_.getVoidTy(), {ir_.getInt64Ty(), i32, i32, i32, i32}, false),
        "st.global.cs.v4.b32 [$0], {$1, $2, $3, $4};", "l,r,r,r,r,~{memory}", /*hasSideEffects=*/true);
    ir_.CreateCall(asm_fn, {global_address(ptr), ir_.CreateExtractElement(v, uint64_t(0)), ir_.CreateExtractElement(v, 1),
                            ir_.CreateExtractElement(v, 2), ir_.CreateExtractElement(v, 3)});
    return;
  }
  auto* store = ir_.CreateAlignedStore(value, ptr, llvm::Align(align));
  apply_hint(store, hint);
}

Value* KernelBuilder::load_f32(DType t, Value* ptr, unsigned width, unsigned align, CacheHint hint) {
  return to_f32(t, load_raw(t, ptr, width, align, hint));
}

void KernelBuilder::store_f32(DType t, Value* value, Value* ptr, unsigned align, CacheHint hint) {
  store_raw(from_f32(t, value), ptr, align, hint);
}

Value* KernelBuilder::load_index(DType t, Value* ptr) {
  auto* v = ir_.CreateLoad(storage_type(t), ptr);
  return t == DType::i64 ? static_cast<Value*>(v) : ir_.CreateSExt(v, ir_.getInt64Ty());
}

Value* KernelBuilder::to_f32(DType t, Value* raw) {
  auto width = llvm::cast<llvm::FixedVectorType>(raw->getType())->getNumElements();
  auto* vf = vector_of(ir_.getFloatTy(), width);
  switch (t) {
    case DType::f32: return raw;
    case DType::f16: return ir_.CreateFPExt(ir_.CreateBitCast(raw, vector_of(ir_.getHalfTy(), width)), vf);
    case DType::bf16: {  // exact: bf16 is the top half of an f32
      auto* wide = ir_.CreateZExt(raw, vector_of(ir_.getInt32Ty(), width));
      return ir_.CreateBitCast(ir_.CreateShl(wide, 16), vf);
    }
    default: throw Error("to_f32: not a floating-point dtype");
  }
}

Value* KernelBuilder::bf16_from_f32_bits(Value* value) {
  // Round to nearest even on the bits; NaN becomes the canonical 0x7fff, as cvt.rn.bf16.f32 does.
  auto width = llvm::cast<llvm::FixedVectorType>(value->getType())->getNumElements();
  auto* vi32 = vector_of(ir_.getInt32Ty(), width);
  auto* bits = ir_.CreateBitCast(value, vi32);
  auto* lsb = ir_.CreateAnd(ir_.CreateLShr(bits, 16), 1);
  auto* rounded = ir_.CreateLShr(ir_.CreateAdd(ir_.CreateAdd(bits, llvm::ConstantInt::get(vi32, 0x7fff)), lsb), 16);
  auto* is_nan = ir_.CreateFCmpUNO(value, value);
  auto* r = ir_.CreateSelect(is_nan, llvm::ConstantInt::get(vi32, 0x7fff), rounded);
  return ir_.CreateTrunc(r, vector_of(ir_.getInt16Ty(), width));
}

Value* KernelBuilder::from_f32(DType t, Value* value) {
  auto width = llvm::cast<llvm::FixedVectorType>(value->getType())->getNumElements();
  auto* vi16 = vector_of(ir_.getInt16Ty(), width);
  switch (t) {
    case DType::f32: return value;
    case DType::f16: return ir_.CreateBitCast(ir_.CreateFPTrunc(value, vector_of(ir_.getHalfTy(), width)), vi16);
    case DType::bf16:
      // NVPTX has cvt.rn.bf16x2.f32; x86 would call __truncsfbf2, which libgcc 12 lacks.
      if (target_ == Target::nvptx)
        return ir_.CreateBitCast(ir_.CreateFPTrunc(value, vector_of(ir_.getBFloatTy(), width)), vi16);
      return bf16_from_f32_bits(value);
    default: throw Error("from_f32: not a floating-point dtype");
  }
}

Value* KernelBuilder::fma(Value* a, Value* b, Value* c) {
  // Explicit fma on both targets: NVPTX would otherwise contract mul+add where the host does not.
  return ir_.CreateIntrinsic(llvm::Intrinsic::fma, {a->getType()}, {a, b, c});
}

Value* KernelBuilder::splat(unsigned width, Value* scalar) {
  return ir_.CreateVectorSplat(width, scalar);
}

void KernelBuilder::if_then(Value* cond, const std::function<void()>& body) {
  auto* then_bb = llvm::BasicBlock::Create(ctx(), "then", fn_);
  auto* cont = llvm::BasicBlock::Create(ctx(), "endif", fn_);
  ir_.CreateCondBr(cond, then_bb, cont);
  ir_.SetInsertPoint(then_bb);
  body();
  ir_.CreateBr(cont);
  ir_.SetInsertPoint(cont);
}

void KernelBuilder::return_if(Value* cond) {
  auto* cont = llvm::BasicBlock::Create(ctx(), "cont", fn_);
  ir_.CreateCondBr(cond, exit_, cont);
  ir_.SetInsertPoint(cont);
}

void KernelBuilder::for_range(Value* begin, Value* end, int64_t step,
                              const std::function<void(Value*)>& body) {
  auto* pre = ir_.GetInsertBlock();
  auto* head = llvm::BasicBlock::Create(ctx(), "loop", fn_);
  auto* loop_body = llvm::BasicBlock::Create(ctx(), "body", fn_);
  auto* after = llvm::BasicBlock::Create(ctx(), "endloop", fn_);
  ir_.CreateBr(head);
  ir_.SetInsertPoint(head);
  auto* i = ir_.CreatePHI(ir_.getInt64Ty(), 2, "i");
  i->addIncoming(begin, pre);
  ir_.CreateCondBr(ir_.CreateICmpSLT(i, end), loop_body, after);
  ir_.SetInsertPoint(loop_body);
  body(i);
  auto* next = ir_.CreateAdd(i, i64(step), "", /*HasNUW=*/true, /*HasNSW=*/true);
  i->addIncoming(next, ir_.GetInsertBlock());
  ir_.CreateBr(head);
  ir_.SetInsertPoint(after);
}

std::string KernelBuilder::finish() {
  ir_.CreateBr(exit_);
  ir_.SetInsertPoint(exit_);
  ir_.CreateRetVoid();
  if (target_ == Target::host) {
    emit_host_grid();
    return name_ + "_grid";
  }
  return name_;
}

void KernelBuilder::emit_host_grid() {
  // void <name>_grid(void** params, i64 programs, i32 threads): every program, every thread, in order.
  auto& c = ctx();
  auto* fty = llvm::FunctionType::get(ir_.getVoidTy(), {ir_.getPtrTy(), ir_.getInt64Ty(), ir_.getInt32Ty()}, false);
  auto* grid = llvm::Function::Create(fty, llvm::Function::ExternalLinkage, name_ + "_grid", module_);
  auto* entry = llvm::BasicBlock::Create(c, "entry", grid);
  auto* saved_fn = fn_;
  auto* saved_exit = exit_;
  fn_ = grid;  // for_range creates its blocks in fn_
  ir_.SetInsertPoint(entry);
  std::vector<Value*> args;
  for (size_t i = 0; i < param_specs_.size(); ++i) {
    auto* slot = ir_.CreateLoad(ir_.getPtrTy(), ir_.CreateConstGEP1_64(ir_.getPtrTy(), grid->getArg(0), i));
    auto* ty = param_specs_[i].kind == ParamKind::ptr ? static_cast<llvm::Type*>(ir_.getPtrTy()) : ir_.getInt64Ty();
    args.push_back(ir_.CreateLoad(ty, slot));
  }
  auto* threads = ir_.CreateZExt(grid->getArg(2), ir_.getInt64Ty());
  for_range(i64(0), grid->getArg(1), 1, [&](Value* pid) {
    for_range(i64(0), threads, 1, [&](Value* tid) {
      auto call_args = args;
      call_args.push_back(pid);
      call_args.push_back(tid);
      ir_.CreateCall(saved_fn, call_args);
    });
  });
  ir_.CreateRetVoid();
  fn_ = saved_fn;
  exit_ = saved_exit;
}

}  // namespace ropejit::codegen
