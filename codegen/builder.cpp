// lang::Builder over llvm::IRBuilder: typed values, memory, control flow and the host's thread loops.
#include <fmt/format.h>
#include <llvm/IR/InlineAsm.h>
#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/IntrinsicsNVPTX.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Support/raw_ostream.h>

#include "codegen/builder_impl.hpp"

namespace ropejit::lang {

using V = lang::Value;

namespace {
Error misuse(const std::string& what) { return Error(ErrorKind::invalid_argument, "kernel language: " + what); }
}  // namespace

Builder::Impl::Impl(llvm::Module& m, Target t, const std::string& n, const Signature& sig, int thr)
    : module(m), target(t), name(n), signature(sig), threads(thr), ir(m.getContext()) {
  if (thr < 1 || thr > 1024 || (thr & (thr - 1)))
    throw misuse(fmt::format("{} threads per program: a power of two from 1 to 1024 is needed", thr));
  std::vector<llvm::Type*> types;
  for (const auto& a : sig.args())
    types.push_back(a.kind == ArgKind::pointer ? static_cast<llvm::Type*>(ir.getPtrTy())
                    : a.kind == ArgKind::int64 ? ir.getInt64Ty()
                                               : ir.getFloatTy());
  if (t == Target::host)  // program ids arrive as arguments on the host
    for (int i = 0; i < 3; ++i) types.push_back(ir.getInt64Ty());
  auto* fty = llvm::FunctionType::get(ir.getVoidTy(), types, false);
  fn = llvm::Function::Create(fty, t == Target::host ? llvm::Function::InternalLinkage : llvm::Function::ExternalLinkage,
                              t == Target::host ? n + "_program" : n, m);
  fn->addFnAttr(llvm::Attribute::NoUnwind);
  if (t == Target::host) fn->addFnAttr(llvm::Attribute::AlwaysInline);
  for (size_t i = 0; i < sig.size(); ++i) {
    auto* arg = fn->getArg(unsigned(i));
    const auto& a = sig.args()[i];
    arg->setName(a.name);
    params.push_back(arg);
    if (a.kind != ArgKind::pointer) continue;
    if (a.noalias) arg->addAttr(llvm::Attribute::NoAlias);
    if (a.readonly) arg->addAttr(llvm::Attribute::ReadOnly);
  }
  entry = new_block("entry");
  exit = new_block("exit");
  ir.SetInsertPoint(entry);
  if (t == Target::nvptx) {
    auto read = [&](llvm::Intrinsic::ID id) { return ir.CreateZExt(ir.CreateIntrinsic(id, {}, {}), ir.getInt64Ty()); };
    pid[0] = read(llvm::Intrinsic::nvvm_read_ptx_sreg_ctaid_x);
    pid[1] = read(llvm::Intrinsic::nvvm_read_ptx_sreg_ctaid_y);
    pid[2] = read(llvm::Intrinsic::nvvm_read_ptx_sreg_ctaid_z);
    nvptx_tid = read(llvm::Intrinsic::nvvm_read_ptx_sreg_tid_x);
    // Kernel marker and launch bound (NVPTX in LLVM 19 reads both from nvvm.annotations).
    auto* md = m.getOrInsertNamedMetadata("nvvm.annotations");
    auto* i32 = ir.getInt32Ty();
    auto& c = ctx();
    md->addOperand(llvm::MDNode::get(c, {llvm::ValueAsMetadata::get(fn), llvm::MDString::get(c, "kernel"),
                                         llvm::ConstantAsMetadata::get(llvm::ConstantInt::get(i32, 1))}));
    md->addOperand(llvm::MDNode::get(c, {llvm::ValueAsMetadata::get(fn), llvm::MDString::get(c, "maxntidx"),
                                         llvm::ConstantAsMetadata::get(llvm::ConstantInt::get(i32, thr))}));
  } else {
    for (int i = 0; i < 3; ++i) pid[i] = fn->getArg(unsigned(sig.size() + size_t(i)));
    open_segment();
  }
}

// ---- Values ----

llvm::Type* Builder::Impl::elem_type(Elem e) {
  switch (e) {
    case Elem::boolean: return ir.getInt1Ty();
    case Elem::i16: return ir.getInt16Ty();
    case Elem::i32: return ir.getInt32Ty();
    case Elem::i64: return ir.getInt64Ty();
    case Elem::f32: return ir.getFloatTy();
    case Elem::pointer: return ir.getPtrTy();
  }
  return nullptr;
}

llvm::Type* Builder::Impl::type_of(Elem e, int width) {
  return width == 1 ? elem_type(e) : static_cast<llvm::Type*>(llvm::FixedVectorType::get(elem_type(e), unsigned(width)));
}

llvm::Type* Builder::Impl::storage_type(DType t) {
  switch (t) {
    case DType::f32: return ir.getFloatTy();
    case DType::f16:
    case DType::bf16: return ir.getInt16Ty();
    case DType::i32: return ir.getInt32Ty();
    case DType::i64: return ir.getInt64Ty();
  }
  return nullptr;
}

V Builder::Impl::wrap(llvm::Value* v, Elem elem, int width, DType pointee) {
  int seg = target == Target::host && !llvm::isa<llvm::Constant>(v) && !llvm::isa<llvm::Argument>(v)
                ? int(segments.size()) - 1
                : -1;
  if (seg >= 0 && nesting > 0) nested.insert(v);
  return V(self, v, elem, width, pointee, seg);
}

V Builder::Impl::wrap_like(llvm::Value* v, const V& like) { return wrap(v, like.elem(), like.width(), like.pointee()); }

V Builder::Impl::constant(llvm::Value* v, Elem elem, int width, DType pointee) { return V(self, v, elem, width, pointee, -1); }

llvm::Value* Builder::Impl::use(const V& v) {
  if (!v.valid()) throw misuse("an empty Value was used");
  if (v.builder() != self) throw misuse("a Value from another kernel was used");
  auto* raw = static_cast<llvm::Value*>(v.handle());
  const int cur = int(segments.size()) - 1;
  if (target != Target::host || v.segment() < 0 || v.segment() == cur) return raw;
  // Made in an earlier thread loop: kept per thread there, read back at the top of this loop.
  if (nested.count(raw))
    throw misuse("a Value made inside an if_then or for_range body is used after a reduction (outside its body)");
  auto& reload = reloads[{raw, cur}];
  if (reload) return reload;
  auto& slot = spills[raw];
  if (!slot) {
    slot = per_thread_array(raw->getType(), "spill");
    const Segment& def = segments[size_t(v.segment())];
    auto* inst = llvm::cast<llvm::Instruction>(raw);
    llvm::IRBuilder<> b(ctx());
    if (inst == def.tid)
      b.SetInsertPoint(def.body, def.body->getFirstInsertionPt());
    else if (llvm::isa<llvm::PHINode>(inst))
      b.SetInsertPoint(inst->getParent(), inst->getParent()->getFirstInsertionPt());
    else
      b.SetInsertPoint(inst->getNextNode());
    b.CreateStore(raw, b.CreateGEP(raw->getType(), slot, def.tid));
  }
  const Segment& seg = segments.back();
  llvm::IRBuilder<> b(seg.body, seg.body->getFirstInsertionPt());
  reload = b.CreateLoad(raw->getType(), b.CreateGEP(raw->getType(), slot, seg.tid));
  return reload;
}

llvm::AllocaInst* Builder::Impl::per_thread_array(llvm::Type* t, const char* nm) {
  llvm::IRBuilder<> b(entry, entry->begin());
  return b.CreateAlloca(llvm::ArrayType::get(t, uint64_t(threads)), nullptr, nm);
}

// ---- Host thread loops ----

void Builder::Impl::open_segment() {
  Segment s{};
  auto* pre = ir.GetInsertBlock();
  s.head = new_block("threads");
  s.body = new_block("thread");
  s.latch = new_block("next_thread");
  s.after = new_block("threads_done");
  ir.CreateBr(s.head);
  ir.SetInsertPoint(s.head);
  s.tid = ir.CreatePHI(ir.getInt64Ty(), 2, "tid");
  s.tid->addIncoming(ir.getInt64(0), pre);
  ir.CreateCondBr(ir.CreateICmpULT(s.tid, ir.getInt64(uint64_t(threads))), s.body, s.after);
  ir.SetInsertPoint(s.body);
  segments.push_back(s);
}

void Builder::Impl::close_segment() {
  Segment& s = segments.back();
  ir.CreateBr(s.latch);
  ir.SetInsertPoint(s.latch);
  s.tid->addIncoming(ir.CreateAdd(s.tid, ir.getInt64(1), "", true, true), s.latch);
  ir.CreateBr(s.head);
  ir.SetInsertPoint(s.after);
  if (program_done) {  // every thread has reached the return: the program ends here
    auto* cont = new_block("program_continues");
    ir.CreateCondBr(ir.CreateLoad(ir.getInt1Ty(), program_done), exit, cont);
    ir.SetInsertPoint(cont);
  }
}

void Builder::Impl::counted_loop(llvm::Value* begin, llvm::Value* end, int64_t step,
                                 const std::function<void(llvm::Value*)>& body) {
  auto* pre = ir.GetInsertBlock();
  auto* head = new_block("loop");
  auto* b = new_block("body");
  auto* after = new_block("endloop");
  ir.CreateBr(head);
  ir.SetInsertPoint(head);
  auto* i = ir.CreatePHI(ir.getInt64Ty(), 2, "i");
  i->addIncoming(begin, pre);
  ir.CreateCondBr(step > 0 ? ir.CreateICmpSLT(i, end) : ir.CreateICmpSGT(i, end), b, after);
  ir.SetInsertPoint(b);
  body(i);
  i->addIncoming(ir.CreateAdd(i, ir.getInt64(uint64_t(step)), "", /*HasNUW=*/false, /*HasNSW=*/true),
                 ir.GetInsertBlock());
  ir.CreateBr(head);
  ir.SetInsertPoint(after);
}

void Builder::Impl::uniform_loop(int64_t n, const std::function<void(llvm::Value*)>& body) {
  counted_loop(ir.getInt64(0), ir.getInt64(uint64_t(n)), 1, body);
}

std::string Builder::Impl::finish() {
  if (target == Target::host) close_segment();
  ir.CreateBr(exit);
  ir.SetInsertPoint(exit);
  ir.CreateRetVoid();
  std::string symbol = name;
  if (target == Target::host) {
    // void <name>_grid(void** params, i64 gx, i64 gy, i64 gz): every program, in order.
    auto* i64 = ir.getInt64Ty();
    auto* fty = llvm::FunctionType::get(ir.getVoidTy(), {ir.getPtrTy(), i64, i64, i64}, false);
    auto* grid = llvm::Function::Create(fty, llvm::Function::ExternalLinkage, name + "_grid", module);
    auto* program = fn;
    fn = grid;  // the loop helpers make their blocks in fn
    ir.SetInsertPoint(llvm::BasicBlock::Create(ctx(), "entry", grid));
    std::vector<llvm::Value*> args;
    for (size_t i = 0; i < signature.size(); ++i) {
      auto* slot = ir.CreateLoad(ir.getPtrTy(), ir.CreateConstGEP1_64(ir.getPtrTy(), grid->getArg(0), i));
      args.push_back(ir.CreateLoad(program->getArg(unsigned(i))->getType(), slot));
    }
    auto loop = [&](llvm::Value* n, const std::function<void(llvm::Value*)>& body) {
      counted_loop(ir.getInt64(0), n, 1, body);
    };
    loop(grid->getArg(3), [&](llvm::Value* z) {
      loop(grid->getArg(2), [&](llvm::Value* y) {
        loop(grid->getArg(1), [&](llvm::Value* x) {
          auto call = args;
          call.push_back(x);
          call.push_back(y);
          call.push_back(z);
          ir.CreateCall(program, call);
        });
      });
    });
    ir.CreateRetVoid();
    fn = program;
    symbol = name + "_grid";
  }
  std::string problems;
  llvm::raw_string_ostream os(problems);
  if (llvm::verifyModule(module, &os))
    throw Error(ErrorKind::compile, fmt::format("kernel {}: the generated IR is invalid (a Value used outside the "
                                                "body that made it?): {}",
                                                name, problems));
  return symbol;
}

// ---- Builder: ids, parameters, constants ----

Target Builder::target() const { return impl_->target; }
int Builder::threads() const { return impl_->threads; }

V Builder::param(std::string_view name) {
  size_t i = impl_->signature.index(name);
  const Arg& a = impl_->signature.args()[i];
  Elem e = a.kind == ArgKind::pointer ? Elem::pointer : a.kind == ArgKind::int64 ? Elem::i64 : Elem::f32;
  return impl_->constant(impl_->params[i], e, 1, a.dtype);
}

V Builder::program_id(int axis) {
  if (axis < 0 || axis > 2) throw misuse(fmt::format("program_id axis {} is not 0, 1 or 2", axis));
  return impl_->constant(impl_->pid[axis], Elem::i64);
}

V Builder::thread_id() {
  if (impl_->target == Target::nvptx) return impl_->constant(impl_->nvptx_tid, Elem::i64);
  return impl_->wrap(impl_->segments.back().tid, Elem::i64, 1);
}

V Builder::i64(int64_t v) { return impl_->constant(impl_->ir.getInt64(uint64_t(v)), Elem::i64); }
V Builder::i32(int32_t v) { return impl_->constant(impl_->ir.getInt32(uint32_t(v)), Elem::i32); }
V Builder::f32(float v) { return impl_->constant(llvm::ConstantFP::get(impl_->ir.getFloatTy(), v), Elem::f32); }
V Builder::boolean(bool v) { return impl_->constant(impl_->ir.getInt1(v), Elem::boolean); }

}  // namespace ropejit::lang
