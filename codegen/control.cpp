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
  if (begin.elem() != Elem::i64 || end.elem() != Elem::i64 || step == 0)
    throw Error(ErrorKind::invalid_argument, "kernel language: for_range takes i64 bounds and a non-zero step");
  ++im.nesting;
  im.counted_loop(im.use(begin), im.use(end), step, [&](llvm::Value* i) { body(im.wrap(i, Elem::i64, 1)); });
  --im.nesting;
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
  if (im.target == Target::nvptx) {
    im.ir.CreateCondBr(c, im.exit, cont);
    im.ir.SetInsertPoint(cont);
    return;
  }
  // Host: this thread's turn ends; once every thread has had its turn, the program ends (each thread
  // runs what comes before the return first, as on the GPU).
  if (!im.program_done) {
    llvm::IRBuilder<> b(im.entry, im.entry->getFirstInsertionPt());
    im.program_done = b.CreateAlloca(b.getInt1Ty(), nullptr, "program_done");
    b.CreateStore(b.getInt1(false), im.program_done);
  }
  auto* leave = im.new_block("program_returns");
  im.ir.CreateCondBr(c, leave, cont);
  im.ir.SetInsertPoint(leave);
  im.ir.CreateStore(im.ir.getInt1(true), im.program_done);
  im.ir.CreateBr(im.segments.back().latch);
  im.ir.SetInsertPoint(cont);
}

}  // namespace ropejit::lang
