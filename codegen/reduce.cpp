// Reductions across a program's threads. NVPTX: a butterfly of warp shuffles (shfl.sync.bfly), then,
// where a group spans warps, each warp's result through shared memory, summed in warp order. Groups
// of a size that does not divide the warp are packed into each warp and summed in lane order
// (shfl.sync.idx from each lane of the group). Host: the thread loop splits here and the same
// butterfly, lane order and warp order run over per-thread arrays, so both backends give the same bits.
#include <fmt/format.h>
#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/IntrinsicsNVPTX.h>

#include "codegen/builder_impl.hpp"

namespace ropejit::lang {

using V = lang::Value;

namespace {
llvm::Value* combine(llvm::IRBuilder<>& ir, llvm::Value* a, llvm::Value* b, bool is_max) {
  return is_max ? ir.CreateIntrinsic(llvm::Intrinsic::maxnum, {a->getType()}, {a, b}) : ir.CreateFAdd(a, b);
}
}  // namespace

V Builder::Impl::reduce(V v, int lanes, bool is_max) {
  const char* what = is_max ? "reduce_max" : "reduce_sum";
  if (v.elem() != Elem::f32) throw Error(ErrorKind::invalid_argument, fmt::format("kernel language: {} takes f32 values", what));
  if (lanes == 0) lanes = threads;
  const bool pow2 = lanes > 0 && (lanes & (lanes - 1)) == 0;
  if (lanes < 1 || lanes > threads || (!pow2 && lanes > 32))
    throw Error(ErrorKind::invalid_argument,
                fmt::format("kernel language: {} over {} lanes: a power of two up to the program's {} threads, or "
                            "any count up to 32",
                            what, lanes, threads));
  if (nesting > 0)
    throw Error(ErrorKind::invalid_argument,
                fmt::format("kernel language: {} inside if_then or for_range: every thread must reach it", what));
  if (thread_returned)
    throw Error(ErrorKind::invalid_argument,
                fmt::format("kernel language: {} after return_if: every thread must reach it", what));
  ++reductions;
  return target == Target::nvptx ? reduce_nvptx(v, lanes, is_max) : reduce_host(v, lanes, is_max);
}

namespace {
// Where thread `tid` (i64) reads in a packed reduction over `lanes`: its group's first thread, and
// whether it is past the warp's last whole group (then it keeps its own value).
struct PackedPlace {
  llvm::Value *first, *spare;
};
PackedPlace packed_place(llvm::IRBuilder<>& ir, llvm::Value* tid, int lanes, int warp) {
  llvm::Value* wl = ir.CreateURem(tid, ir.getInt64(uint64_t(warp)));
  llvm::Value* in_group = ir.CreateURem(wl, ir.getInt64(uint64_t(lanes)));
  llvm::Value* spare = ir.CreateICmpUGE(wl, ir.getInt64(uint64_t(warp / lanes * lanes)));
  return {ir.CreateSub(tid, in_group), spare};
}
}  // namespace

V Builder::Impl::reduce_nvptx(V v, int lanes, bool is_max) {
  auto* f32 = ir.getFloatTy();
  auto* i32 = ir.getInt32Ty();
  const int warp_lanes = std::min(lanes, 32);
  const uint32_t member = threads >= 32 ? 0xffffffffu : (1u << threads) - 1;
  llvm::Value* x = use(v);
  std::vector<llvm::Value*> parts;
  for (int e = 0; e < v.width(); ++e) parts.push_back(v.width() == 1 ? x : ir.CreateExtractElement(x, uint64_t(e)));
  const bool packed = lanes & (lanes - 1);
  if (packed) {
    // Packed groups: each lane of the group read in order (shfl.sync.idx); spare threads read
    // themselves, so every source lane is a member of the shuffle, and keep their own value.
    const int warp = std::min(threads, 32);
    PackedPlace at = packed_place(ir, nvptx_tid, lanes, warp);
    llvm::Value* self = ir.CreateTrunc(ir.CreateURem(nvptx_tid, ir.getInt64(uint64_t(warp))), i32);
    llvm::Value* first = ir.CreateTrunc(ir.CreateURem(at.first, ir.getInt64(uint64_t(warp))), i32);
    for (auto& p : parts) {
      llvm::Value* acc = nullptr;
      for (int k = 0; k < lanes; ++k) {
        llvm::Value* src = ir.CreateSelect(at.spare, self, ir.CreateAdd(first, ir.getInt32(uint32_t(k))));
        llvm::Value* s = ir.CreateIntrinsic(llvm::Intrinsic::nvvm_shfl_sync_idx_f32, {},
                                            {ir.getInt32(member), p, src, ir.getInt32(0x1f)});
        acc = acc ? combine(ir, acc, s, is_max) : s;
      }
      p = ir.CreateSelect(at.spare, p, acc);
    }
  }
  for (auto& p : parts)  // the butterfly within a warp (none for packed groups)
    for (int o = packed ? 0 : warp_lanes / 2; o >= 1; o /= 2) {
      llvm::Value* other = ir.CreateIntrinsic(llvm::Intrinsic::nvvm_shfl_sync_bfly_f32, {},
                                        {ir.getInt32(member), p, ir.getInt32(uint32_t(o)), ir.getInt32(0x1f)});
      p = combine(ir, p, other, is_max);
    }
  if (lanes > 32) {
    // Lane 0 of each warp publishes; after the barrier every thread combines its group's warps in order.
    const int warps = threads / 32, per_group = lanes / 32, n = v.width();
    auto* arr = llvm::ArrayType::get(f32, uint64_t(warps * n));
    auto* smem = new llvm::GlobalVariable(module, arr, false, llvm::GlobalValue::InternalLinkage,
                                          llvm::UndefValue::get(arr), fmt::format("reduce{}", reductions), nullptr,
                                          llvm::GlobalValue::NotThreadLocal, 3);
    smem->setAlignment(llvm::Align(4));
    llvm::Value* tid = nvptx_tid;
    llvm::Value* warp = ir.CreateLShr(tid, 5);
    llvm::Value* lane = ir.CreateAnd(tid, 31);
    auto* then = new_block("publish");
    auto* cont = new_block("published");
    ir.CreateCondBr(ir.CreateICmpEQ(lane, ir.getInt64(0)), then, cont);
    ir.SetInsertPoint(then);
    for (int e = 0; e < n; ++e)
      ir.CreateStore(parts[size_t(e)], ir.CreateGEP(f32, smem, ir.CreateAdd(ir.CreateMul(warp, ir.getInt64(uint64_t(n))), ir.getInt64(uint64_t(e)))));
    ir.CreateBr(cont);
    ir.SetInsertPoint(cont);
    ir.CreateIntrinsic(llvm::Intrinsic::nvvm_barrier0, {}, {});
    llvm::Value* first = ir.CreateMul(ir.CreateUDiv(warp, ir.getInt64(uint64_t(per_group))), ir.getInt64(uint64_t(per_group)));
    for (int e = 0; e < n; ++e) {
      llvm::Value* acc = nullptr;
      for (int w = 0; w < per_group; ++w) {
        llvm::Value* idx = ir.CreateAdd(ir.CreateMul(ir.CreateAdd(first, ir.getInt64(uint64_t(w))), ir.getInt64(uint64_t(n))),
                                  ir.getInt64(uint64_t(e)));
        llvm::Value* s = ir.CreateLoad(f32, ir.CreateGEP(f32, smem, idx));
        acc = acc ? combine(ir, acc, s, is_max) : s;
      }
      parts[size_t(e)] = acc;
    }
  }
  llvm::Value* r = parts[0];
  if (v.width() > 1) {
    r = llvm::PoisonValue::get(llvm::FixedVectorType::get(f32, unsigned(v.width())));
    for (int e = 0; e < v.width(); ++e) r = ir.CreateInsertElement(r, parts[size_t(e)], uint64_t(e));
  }
  return wrap(r, Elem::f32, v.width());
}

V Builder::Impl::reduce_host(V v, int lanes, bool is_max) {
  auto* t = type_of(Elem::f32, v.width());
  auto* a = per_thread_array(t, "reduce_a");
  auto* b = per_thread_array(t, "reduce_b");
  ir.CreateStore(use(v), ir.CreateGEP(t, a, segments.back().tid));
  close_segment();
  auto* src = a;
  auto* dst = b;
  const bool packed = lanes & (lanes - 1);
  if (packed) {  // packed groups, in lane order; spare threads keep their own value
    uniform_loop(threads, [&](llvm::Value* i) {
      PackedPlace at = packed_place(ir, i, lanes, std::min(threads, 32));
      llvm::Value* acc = nullptr;
      for (int k = 0; k < lanes; ++k) {
        llvm::Value* from = ir.CreateSelect(at.spare, i, ir.CreateAdd(at.first, ir.getInt64(uint64_t(k))));
        llvm::Value* s = ir.CreateLoad(t, ir.CreateGEP(t, src, from));
        acc = acc ? combine(ir, acc, s, is_max) : s;
      }
      ir.CreateStore(ir.CreateSelect(at.spare, ir.CreateLoad(t, ir.CreateGEP(t, src, i)), acc), ir.CreateGEP(t, dst, i));
    });
    std::swap(src, dst);
  }
  // The warp butterfly, step by step over all threads: r[i] = r[i] op r[i ^ o] (none for packed groups).
  for (int o = packed ? 0 : std::min(lanes, 32) / 2; o >= 1; o /= 2) {
    uniform_loop(threads, [&](llvm::Value* i) {
      llvm::Value* mine = ir.CreateLoad(t, ir.CreateGEP(t, src, i));
      llvm::Value* theirs = ir.CreateLoad(t, ir.CreateGEP(t, src, ir.CreateXor(i, ir.getInt64(uint64_t(o)))));
      ir.CreateStore(combine(ir, mine, theirs, is_max), ir.CreateGEP(t, dst, i));
    });
    std::swap(src, dst);
  }
  if (lanes > 32) {  // each warp's value (lane 0's), combined in warp order within the group
    const int per_group = lanes / 32;
    uniform_loop(threads, [&](llvm::Value* i) {
      llvm::Value* first = ir.CreateMul(ir.CreateUDiv(i, ir.getInt64(uint64_t(lanes))), ir.getInt64(uint64_t(lanes)));
      llvm::Value* acc = nullptr;
      for (int w = 0; w < per_group; ++w) {
        llvm::Value* s = ir.CreateLoad(t, ir.CreateGEP(t, src, ir.CreateAdd(first, ir.getInt64(uint64_t(32 * w)))));
        acc = acc ? combine(ir, acc, s, is_max) : s;
      }
      ir.CreateStore(acc, ir.CreateGEP(t, dst, i));
    });
    std::swap(src, dst);
  }
  open_segment();
  return wrap(ir.CreateLoad(t, ir.CreateGEP(t, src, segments.back().tid)), Elem::f32, v.width());
}

V Builder::reduce_sum(V v, int lanes) { return impl_->reduce(v, lanes, false); }
V Builder::reduce_max(V v, int lanes) { return impl_->reduce(v, lanes, true); }

}  // namespace ropejit::lang
