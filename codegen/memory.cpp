// The language's global memory: typed, optionally masked, vector loads and stores with cache hints,
// and the conversions between storage (f32, f16, bf16, i32, i64) and values, identical on both targets.
#include <fmt/format.h>
#include <llvm/IR/InlineAsm.h>
#include <llvm/IR/Intrinsics.h>

#include "codegen/builder_impl.hpp"

namespace ropejit::lang {

using V = lang::Value;

namespace {

Error misuse(const std::string& what) { return Error(ErrorKind::invalid_argument, "kernel language: " + what); }

struct Mem {
  Builder::Impl& im;
  llvm::IRBuilder<>& ir;

  unsigned align_of(DType t, int width, int given) {
    if (given < 0 || (given & (given - 1)))
      throw misuse(fmt::format("an access's align {} is not a power of two", given));
    if (given > 0) return unsigned(given);
    unsigned bytes = unsigned(width * dtype_size(t));
    unsigned a = bytes & (~bytes + 1);  // largest power of two dividing the size
    return std::min(16u, a);
  }
  llvm::Type* vec(llvm::Type* t, int width) {
    return width == 1 ? t : static_cast<llvm::Type*>(llvm::FixedVectorType::get(t, unsigned(width)));
  }
  // The .cs forms move 16 aligned bytes; anything else stays a plain access.
  bool streamed(CacheHint hint, llvm::Type* type, unsigned align) const {
    return hint == CacheHint::stream && im.target == Target::nvptx && align >= 16 &&
           im.module.getDataLayout().getTypeStoreSize(type) == 16;
  }
  llvm::Value* global_address(llvm::Value* ptr) {
    // The .cs forms take a global address: cvta.to.global, as NVPTX lowers this cast.
    return ir.CreatePtrToInt(ir.CreateAddrSpaceCast(ptr, llvm::PointerType::get(im.ctx(), 1)), ir.getInt64Ty());
  }

  llvm::Value* raw_load(llvm::Type* type, llvm::Value* ptr, unsigned align, CacheHint hint) {
    if (streamed(hint, type, align)) {
      auto* i32 = ir.getInt32Ty();
      auto* ret = llvm::StructType::get(im.ctx(), {i32, i32, i32, i32});
      auto* asm_fn = llvm::InlineAsm::get(llvm::FunctionType::get(ret, {ir.getInt64Ty()}, false),
                                          "ld.global.cs.v4.b32 {$0, $1, $2, $3}, [$4];", "=r,=r,=r,=r,l,~{memory}",
                                          /*hasSideEffects=*/true);
      auto* parts = ir.CreateCall(asm_fn, {global_address(ptr)});
      llvm::Value* v = llvm::PoisonValue::get(llvm::FixedVectorType::get(i32, 4));
      for (unsigned i = 0; i < 4; ++i) v = ir.CreateInsertElement(v, ir.CreateExtractValue(parts, i), i);
      return ir.CreateBitCast(v, type);
    }
    auto* load = ir.CreateAlignedLoad(type, ptr, llvm::Align(align));
    // !invariant.load lets NVPTX select ld.global.nc; the host ignores it.
    if (hint == CacheHint::readonly) load->setMetadata(llvm::LLVMContext::MD_invariant_load, llvm::MDNode::get(im.ctx(), {}));
    return load;
  }

  void raw_store(llvm::Value* value, llvm::Value* ptr, unsigned align, CacheHint hint) {
    if (streamed(hint, value->getType(), align)) {
      auto* i32 = ir.getInt32Ty();
      llvm::Value* v = ir.CreateBitCast(value, llvm::FixedVectorType::get(i32, 4));
      auto* asm_fn = llvm::InlineAsm::get(
          llvm::FunctionType::get(ir.getVoidTy(), {ir.getInt64Ty(), i32, i32, i32, i32}, false),
          "st.global.cs.v4.b32 [$0], {$1, $2, $3, $4};", "l,r,r,r,r,~{memory}", /*hasSideEffects=*/true);
      ir.CreateCall(asm_fn, {global_address(ptr), ir.CreateExtractElement(v, uint64_t(0)), ir.CreateExtractElement(v, 1),
                             ir.CreateExtractElement(v, 2), ir.CreateExtractElement(v, 3)});
      return;
    }
    ir.CreateAlignedStore(value, ptr, llvm::Align(align));
  }

  // Storage bits -> value: f16/bf16 widen exactly to f32.
  llvm::Value* widen(DType t, llvm::Value* raw, int width) {
    switch (t) {
      case DType::f16: return ir.CreateFPExt(ir.CreateBitCast(raw, vec(ir.getHalfTy(), width)), vec(ir.getFloatTy(), width));
      case DType::bf16:  // exact: bf16 is the top half of an f32
        return ir.CreateBitCast(ir.CreateShl(ir.CreateZExt(raw, vec(ir.getInt32Ty(), width)), 16), vec(ir.getFloatTy(), width));
      case DType::f32:  // bits (i32) or the loaded float itself
        return raw->getType()->isFPOrFPVectorTy() ? raw : ir.CreateBitCast(raw, vec(ir.getFloatTy(), width));
      default: return raw;
    }
  }

  llvm::Value* bf16_bits(llvm::Value* value, int width) {
    // Round to nearest even on the bits; NaN becomes the canonical 0x7fff, as cvt.rn.bf16.f32 does.
    auto* vi32 = vec(ir.getInt32Ty(), width);
    auto* bits = ir.CreateBitCast(value, vi32);
    auto* lsb = ir.CreateAnd(ir.CreateLShr(bits, 16), 1);
    auto* rounded = ir.CreateLShr(ir.CreateAdd(ir.CreateAdd(bits, llvm::ConstantInt::get(vi32, 0x7fff)), lsb), 16);
    auto* r = ir.CreateSelect(ir.CreateFCmpUNO(value, value), llvm::ConstantInt::get(vi32, 0x7fff), rounded);
    return ir.CreateTrunc(r, vec(ir.getInt16Ty(), width));
  }

  // Value -> storage bits, rounded once to nearest even.
  llvm::Value* narrow(DType t, llvm::Value* value, int width) {
    auto* vi16 = vec(ir.getInt16Ty(), width);
    switch (t) {
      case DType::f16: return ir.CreateBitCast(ir.CreateFPTrunc(value, vec(ir.getHalfTy(), width)), vi16);
      case DType::bf16:
        // NVPTX has cvt.rn.bf16x2.f32; x86 would call __truncsfbf2, which libgcc 12 lacks.
        if (im.target == Target::nvptx) return ir.CreateBitCast(ir.CreateFPTrunc(value, vec(ir.getBFloatTy(), width)), vi16);
        return bf16_bits(value, width);
      default: return value;
    }
  }
};

Elem value_elem(DType t) {
  switch (t) {
    case DType::i32: return Elem::i32;
    case DType::i64: return Elem::i64;
    default: return Elem::f32;
  }
}
Elem bits_elem(DType t) {
  switch (t) {
    case DType::f16:
    case DType::bf16: return Elem::i16;
    case DType::f32:
    case DType::i32: return Elem::i32;
    case DType::i64: return Elem::i64;
  }
  return Elem::i32;
}

void check_pointer(const V& ptr, const char* what) {
  if (!ptr.valid() || ptr.elem() != Elem::pointer || ptr.width() != 1)
    throw misuse(fmt::format("{} needs a pointer (a pointer parameter, plus an offset)", what));
}

// Runs `access` where the scalar mask holds; returns the phi of its value and `other` when it makes one.
llvm::Value* guarded(Builder::Impl& im, llvm::Value* mask, llvm::Value* other, const std::function<llvm::Value*()>& access) {
  auto& ir = im.ir;
  auto* from = ir.GetInsertBlock();
  auto* then = im.new_block("masked");
  auto* merge = im.new_block("unmasked");
  ir.CreateCondBr(mask, then, merge);
  ir.SetInsertPoint(then);
  llvm::Value* v = access();
  auto* then_end = ir.GetInsertBlock();
  ir.CreateBr(merge);
  ir.SetInsertPoint(merge);
  if (!v) return nullptr;
  auto* phi = ir.CreatePHI(v->getType(), 2);
  phi->addIncoming(v, then_end);
  phi->addIncoming(other, from);
  return phi;
}

V do_load(Builder::Impl& im, V ptr, int width, const Access& a, bool bits) {
  check_pointer(ptr, bits ? "load_bits" : "load");
  if (width < 1 || width > 64) throw misuse(fmt::format("load of {} elements", width));
  Mem m{im, im.ir};
  const DType t = ptr.pointee();
  const Elem out = bits ? bits_elem(t) : value_elem(t);
  // Bits are integers of the element's size (f32 too); values load in their storage type.
  auto* raw_type = m.vec(bits ? im.elem_type(out) : im.storage_type(t), width);
  const unsigned align = m.align_of(t, width, a.align);
  llvm::Value* p = im.use(ptr);
  auto convert = [&](llvm::Value* raw) { return bits ? raw : m.widen(t, raw, width); };
  if (!a.mask.valid()) return im.wrap(convert(m.raw_load(raw_type, p, align, a.hint)), out, width);
  if (a.mask.elem() != Elem::boolean || (a.mask.width() != 1 && a.mask.width() != width))
    throw misuse("a load's mask is a bool, or a vector of bools as wide as the load");
  llvm::Value* other = nullptr;
  if (a.other.valid()) {
    if (a.other.elem() != out) throw misuse("a masked load's `other` has the wrong type");
    if (a.other.width() != 1 && a.other.width() != width)
      throw misuse(fmt::format("a masked load's `other` has {} elements; the load has {}", a.other.width(), width));
    other = im.use(a.other);
    if (a.other.width() == 1 && width > 1) other = im.ir.CreateVectorSplat(unsigned(width), other);
  } else {
    other = llvm::Constant::getNullValue(m.vec(im.elem_type(out), width));
  }
  llvm::Value* mask = im.use(a.mask);
  if (a.mask.width() == 1)  // one branch around the whole access keeps it one vector instruction
    return im.wrap(guarded(im, mask, other, [&] { return convert(m.raw_load(raw_type, p, align, a.hint)); }), out, width);
  // Per-element masks: the masked-load intrinsic (the backends split it as they must).
  llvm::Value* passthru = bits ? other : llvm::PoisonValue::get(raw_type);
  llvm::Value* raw = im.ir.CreateMaskedLoad(raw_type, p, llvm::Align(align), mask, passthru);
  return im.wrap(bits ? raw : im.ir.CreateSelect(mask, m.widen(t, raw, width), other), out, width);
}

void do_store(Builder::Impl& im, V ptr, V value, const Access& a, bool bits) {
  check_pointer(ptr, bits ? "store_bits" : "store");
  Mem m{im, im.ir};
  const DType t = ptr.pointee();
  const Elem expect = bits ? bits_elem(t) : value_elem(t);
  if (value.elem() != expect)
    throw misuse(fmt::format("storing a value of the wrong type into {} memory{}", dtype_name(t),
                             bits ? " (store_bits takes what load_bits gave)" : ""));
  const int width = value.width();
  const unsigned align = m.align_of(t, width, a.align);
  llvm::Value* p = im.use(ptr);
  llvm::Value* v = im.use(value);
  auto emit = [&]() -> llvm::Value* {
    m.raw_store(bits ? v : m.narrow(t, v, width), p, align, a.hint);
    return nullptr;
  };
  if (!a.mask.valid()) {
    emit();
    return;
  }
  if (a.mask.elem() != Elem::boolean || (a.mask.width() != 1 && a.mask.width() != width))
    throw misuse("a store's mask is a bool, or a vector of bools as wide as the value");
  if (a.mask.width() == 1) {
    guarded(im, im.use(a.mask), nullptr, emit);
    return;
  }
  im.ir.CreateMaskedStore(bits ? v : m.narrow(t, v, width), p, llvm::Align(align), im.use(a.mask));
}

}  // namespace

V Builder::from_bits(V bits, DType t) {
  auto& im = *impl_;
  if (bits.elem() != bits_elem(t)) throw misuse(fmt::format("from_bits: not the storage bits of {}", dtype_name(t)));
  Mem m{im, im.ir};
  return im.wrap(m.widen(t, im.use(bits), bits.width()), value_elem(t), bits.width());
}

V Builder::load(V ptr, int width, const Access& access) { return do_load(*impl_, ptr, width, access, false); }
V Builder::load_bits(V ptr, int width, const Access& access) { return do_load(*impl_, ptr, width, access, true); }
void Builder::store(V ptr, V value, const Access& access) { do_store(*impl_, ptr, value, access, false); }
void Builder::store_bits(V ptr, V bits, const Access& access) { do_store(*impl_, ptr, bits, access, true); }

}  // namespace ropejit::lang
