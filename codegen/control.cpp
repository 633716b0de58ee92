// The language's structured control flow: if_then, for_range, and leaving a thread or a program.
#include <fmt/format.h>

#include "codegen/builder_impl.hpp"

namespace ropejit::lang {

using V = lang::Value;

void Builder::if_then(V cond, const std::function<void()>& body) {
  auto& im = *impl_;
  if (cond.elem() != Elem::boolean || cond.width() != 1)
    throw Error(ErrorKind::invalid_argument, "kernel language: if_then takes a scalar bool");
  auto* c = im.use(cond);
  auto* then_bb = im.new_block("then");
  auto* cont = im.new_block("endif");
  im.ir.CreateCondBr(c, then_bb, cont);
  im.ir.SetInsertPoint(then_bb);
  ++im.nesting;
  body();
  --im.nesting;
  im.ir.CreateBr(cont);
  im.ir.SetInsertPoint(cont);
}

void Builder::for_range(V begin, V end, int64_t step, const std::function<void(V)>& body) {
  auto& im = *impl_;
  auto& ir = im.ir;
  if (begin.elem() != Elem::i64 || end.elem() != Elem::i64 || step == 0)
    throw Error(ErrorKind::invalid_argument, "kernel language: for_range takes i64 bounds and a non-zero step");
  auto* b = im.use(begin);
  auto* e = im.use(end);
  auto* pre = ir.GetInsertBlock();
  auto* head = im.new_block("loop");
  auto* loop_body = im.new_block("body");
  auto* after = im.new_block("endloop");
  ir.CreateBr(head);
  ir.SetInsertPoint(head);
  auto* i = ir.CreatePHI(ir.getInt64Ty(), 2, "i");
  i->addIncoming(b, pre);
  ir.CreateCondBr(step > 0 ? ir.CreateICmpSLT(i, e) : ir.CreateICmpSGT(i, e), loop_body, after);
  ir.SetInsertPoint(loop_body);
  ++im.nesting;
  body(im.wrap(i, Elem::i64, 1));
  --im.nesting;
  auto* next = ir.CreateAdd(i, ir.getInt64(uint64_t(step)), "", /*HasNUW=*/step > 0, /*HasNSW=*/true);
  i->addIncoming(next, ir.GetInsertBlock());
  ir.CreateBr(head);
  ir.SetInsertPoint(after);
}

void Builder::return_if(V cond) {
  auto& im = *impl_;
  if (cond.elem() != Elem::boolean || cond.width() != 1)
    throw Error(ErrorKind::invalid_argument, "kernel language: return_if takes a scalar bool");
  auto* c = im.use(cond);
  auto* cont = im.new_block("cont");
  // On the host this thread's turn of the loop ends; the next thread runs.
  auto* leave = im.target == Target::host ? im.segments.back().latch : im.exit;
  im.ir.CreateCondBr(c, leave, cont);
  im.ir.SetInsertPoint(cont);
  im.thread_returned = true;
}

void Builder::return_program_if(V cond) {
  auto& im = *impl_;
  if (cond.elem() != Elem::boolean || cond.width() != 1)
    throw Error(ErrorKind::invalid_argument, "kernel language: return_program_if takes a scalar bool");
  auto* c = im.use(cond);
  auto* cont = im.new_block("cont");
  im.ir.CreateCondBr(c, im.exit, cont);
  im.ir.SetInsertPoint(cont);
}

}  // namespace ropejit::lang
