// The language's arithmetic: operators, conversions, vectors and maths, with C-like typing rules.
#include <fmt/format.h>
#include <llvm/IR/Intrinsics.h>

#include <cmath>

#include "codegen/builder_impl.hpp"

namespace ropejit::lang {

using V = lang::Value;

namespace {

Error misuse(const std::string& what) { return Error(ErrorKind::invalid_argument, "kernel language: " + what); }
bool is_int(Elem e) { return e == Elem::i16 || e == Elem::i32 || e == Elem::i64; }
const char* elem_name(Elem e) {
  switch (e) {
    case Elem::boolean: return "bool";
    case Elem::i16: return "i16";
    case Elem::i32: return "i32";
    case Elem::i64: return "i64";
    case Elem::f32: return "f32";
    case Elem::pointer: return "pointer";
  }
  return "?";
}
std::string type_name(const V& v) {
  return v.width() == 1 ? elem_name(v.elem()) : fmt::format("<{} x {}>", v.width(), elem_name(v.elem()));
}

Builder::Impl& impl_of(const V& a, const V& b) {
  Builder* x = a.valid() ? a.builder() : b.builder();
  if (!x) throw misuse("an empty Value was used");
  return x->impl();
}

// Both operands to one type: a scalar against a vector is splatted; otherwise they must agree.
std::pair<llvm::Value*, llvm::Value*> unify(Builder::Impl& im, const V& a, const V& b, const char* op, V* shape) {
  llvm::Value* x = im.use(a);
  llvm::Value* y = im.use(b);
  if (a.elem() != b.elem())
    throw misuse(fmt::format("{} of {} and {}: convert one side with cast()", op, type_name(a), type_name(b)));
  int w = std::max(a.width(), b.width());
  if (a.width() != b.width()) {
    if (a.width() != 1 && b.width() != 1)
      throw misuse(fmt::format("{} of {} and {}: vector widths differ", op, type_name(a), type_name(b)));
    if (a.width() == 1) x = im.ir.CreateVectorSplat(unsigned(w), x);
    if (b.width() == 1) y = im.ir.CreateVectorSplat(unsigned(w), y);
  }
  *shape = a.width() >= b.width() ? a : b;
  return {x, y};
}

V number_like(const V& like, double v) {
  auto& im = like.builder()->impl();
  llvm::Value* c = nullptr;
  switch (like.elem()) {
    case Elem::f32: c = llvm::ConstantFP::get(im.ir.getFloatTy(), v); break;
    case Elem::i16:
    case Elem::i32:
    case Elem::i64:
    case Elem::pointer:  // pointer + n: an element count
      if (v != std::floor(v)) throw misuse(fmt::format("{} is not an integer, but the other side is {}", v, type_name(like)));
      c = llvm::ConstantInt::get(like.elem() == Elem::pointer ? im.ir.getInt64Ty() : im.elem_type(like.elem()),
                                 uint64_t(int64_t(v)));
      break;
    case Elem::boolean: c = im.ir.getInt1(v != 0); break;
  }
  Elem e = like.elem() == Elem::pointer ? Elem::i64 : like.elem();
  return im.constant(c, e);
}

enum class Op { add, sub, mul, div, rem };

V arith(const V& a, const V& b, Op op) {
  auto& im = impl_of(a, b);
  auto& ir = im.ir;
  if (a.elem() == Elem::pointer) {  // pointer +/- integer: elements of the pointee
    if (op != Op::add && op != Op::sub) throw misuse("pointers only take + and - of an integer");
    if (!is_int(b.elem()) || b.width() != 1) throw misuse("a pointer is advanced by a scalar integer");
    llvm::Value* idx = im.use(b);
    if (b.elem() != Elem::i64) idx = ir.CreateSExt(idx, ir.getInt64Ty());
    if (op == Op::sub) idx = ir.CreateNeg(idx);
    return im.wrap(ir.CreateGEP(im.storage_type(a.pointee()), im.use(a), idx), Elem::pointer, 1, a.pointee());
  }
  static const char* names[] = {"+", "-", "*", "/", "%"};
  V shape;
  auto [x, y] = unify(im, a, b, names[int(op)], &shape);
  llvm::Value* r = nullptr;
  if (shape.elem() == Elem::f32) {
    switch (op) {
      case Op::add: r = ir.CreateFAdd(x, y); break;
      case Op::sub: r = ir.CreateFSub(x, y); break;
      case Op::mul: r = ir.CreateFMul(x, y); break;
      case Op::div: r = ir.CreateFDiv(x, y); break;
      case Op::rem: r = ir.CreateFRem(x, y); break;
    }
  } else if (is_int(shape.elem())) {
    switch (op) {
      case Op::add: r = ir.CreateAdd(x, y); break;
      case Op::sub: r = ir.CreateSub(x, y); break;
      case Op::mul: r = ir.CreateMul(x, y); break;
      case Op::div: r = ir.CreateSDiv(x, y); break;
      case Op::rem: r = ir.CreateSRem(x, y); break;
    }
  } else {
    throw misuse(fmt::format("arithmetic on {}", type_name(shape)));
  }
  return im.wrap_like(r, shape);
}

V compare(const V& a, const V& b, llvm::CmpInst::Predicate fp, llvm::CmpInst::Predicate ip, const char* name) {
  auto& im = impl_of(a, b);
  V shape;
  auto [x, y] = unify(im, a, b, name, &shape);
  llvm::Value* r = shape.elem() == Elem::f32 ? im.ir.CreateFCmp(fp, x, y) : im.ir.CreateICmp(ip, x, y);
  return im.wrap(r, Elem::boolean, shape.width());
}

V logic(const V& a, const V& b, bool is_and) {
  auto& im = impl_of(a, b);
  V shape;
  auto [x, y] = unify(im, a, b, is_and ? "&" : "|", &shape);
  if (shape.elem() == Elem::f32 || shape.elem() == Elem::pointer) throw misuse("& and | take booleans or integers");
  return im.wrap_like(is_and ? im.ir.CreateAnd(x, y) : im.ir.CreateOr(x, y), shape);
}

}  // namespace

V operator+(V a, V b) { return arith(a, b, Op::add); }
V operator-(V a, V b) { return arith(a, b, Op::sub); }
V operator*(V a, V b) { return arith(a, b, Op::mul); }
V operator/(V a, V b) { return arith(a, b, Op::div); }
V operator%(V a, V b) { return arith(a, b, Op::rem); }
V operator-(V a) {
  auto& im = impl_of(a, a);
  if (a.elem() == Elem::f32) return im.wrap_like(im.ir.CreateFNeg(im.use(a)), a);
  if (is_int(a.elem())) return im.wrap_like(im.ir.CreateNeg(im.use(a)), a);
  throw misuse("negation of " + type_name(a));
}
V operator<(V a, V b) { return compare(a, b, llvm::CmpInst::FCMP_OLT, llvm::CmpInst::ICMP_SLT, "<"); }
V operator<=(V a, V b) { return compare(a, b, llvm::CmpInst::FCMP_OLE, llvm::CmpInst::ICMP_SLE, "<="); }
V operator>(V a, V b) { return compare(a, b, llvm::CmpInst::FCMP_OGT, llvm::CmpInst::ICMP_SGT, ">"); }
V operator>=(V a, V b) { return compare(a, b, llvm::CmpInst::FCMP_OGE, llvm::CmpInst::ICMP_SGE, ">="); }
V operator==(V a, V b) { return compare(a, b, llvm::CmpInst::FCMP_OEQ, llvm::CmpInst::ICMP_EQ, "=="); }
V operator!=(V a, V b) { return compare(a, b, llvm::CmpInst::FCMP_UNE, llvm::CmpInst::ICMP_NE, "!="); }
V operator&(V a, V b) { return logic(a, b, true); }
V operator|(V a, V b) { return logic(a, b, false); }
V operator!(V a) {
  auto& im = impl_of(a, a);
  if (a.elem() != Elem::boolean) throw misuse("! of " + type_name(a));
  return im.wrap_like(im.ir.CreateNot(im.use(a)), a);
}

#define ROPEJIT_LANG_MIXED(op)                                    \
  V operator op(V a, double b) { return a op number_like(a, b); } \
  V operator op(double a, V b) { return number_like(b, a) op b; }
ROPEJIT_LANG_MIXED_OPERATORS(ROPEJIT_LANG_MIXED)
#undef ROPEJIT_LANG_MIXED

namespace {
std::pair<llvm::Value*, llvm::Value*> integers(Builder::Impl& im, const V& a, const V& b, const char* name, V* shape) {
  if (!is_int(a.elem()) || !is_int(b.elem())) throw misuse(fmt::format("{} takes integers", name));
  return unify(im, a, b, name, shape);
}
}  // namespace

V Builder::udiv(V a, V b) {
  V shape;
  auto [x, y] = integers(*impl_, a, b, "udiv", &shape);
  return impl_->wrap_like(impl_->ir.CreateUDiv(x, y), shape);
}
V Builder::urem(V a, V b) {
  V shape;
  auto [x, y] = integers(*impl_, a, b, "urem", &shape);
  return impl_->wrap_like(impl_->ir.CreateURem(x, y), shape);
}
V Builder::ult(V a, V b) {
  V shape;
  auto [x, y] = integers(*impl_, a, b, "ult", &shape);
  return impl_->wrap(impl_->ir.CreateICmpULT(x, y), Elem::boolean, shape.width());
}

namespace {
V shift(Builder::Impl& im, const V& v, int bits, bool left) {
  if (!is_int(v.elem())) throw misuse(fmt::format("{} takes integers", left ? "shift_left" : "shift_right"));
  if (bits < 0 || bits >= int(v.elem() == Elem::i64 ? 64 : v.elem() == Elem::i32 ? 32 : 16))
    throw misuse(fmt::format("shift by {} bits of {}", bits, type_name(v)));
  llvm::Value* x = im.use(v);
  return im.wrap_like(left ? im.ir.CreateShl(x, uint64_t(bits)) : im.ir.CreateLShr(x, uint64_t(bits)), v);
}
}  // namespace

V Builder::shift_left(V v, int bits) { return shift(*impl_, v, bits, true); }
V Builder::shift_right(V v, int bits) { return shift(*impl_, v, bits, false); }

V Builder::cast(V v, Elem to) {
  auto& im = *impl_;
  auto& ir = im.ir;
  llvm::Value* x = im.use(v);
  auto* t = im.type_of(to, v.width());
  if (v.elem() == to) return v;
  llvm::Value* r = nullptr;
  if ((is_int(v.elem()) || v.elem() == Elem::boolean) && is_int(to))
    r = v.elem() == Elem::boolean ? ir.CreateZExt(x, t) : ir.CreateSExtOrTrunc(x, t);
  else if (is_int(v.elem()) && to == Elem::f32)
    r = ir.CreateSIToFP(x, t);
  else if (v.elem() == Elem::f32 && is_int(to))
    r = ir.CreateFPToSI(x, t);
  else
    throw misuse(fmt::format("no cast from {} to {}", type_name(v), elem_name(to)));
  return im.wrap(r, to, v.width());
}

V Builder::splat(V scalar, int width) {
  if (scalar.width() != 1) throw misuse("splat of a vector");
  if (width == 1) return scalar;
  return impl_->wrap(impl_->ir.CreateVectorSplat(unsigned(width), impl_->use(scalar)), scalar.elem(), width,
                     scalar.pointee());
}

V Builder::select(V cond, V a, V b) {
  auto& im = *impl_;
  if (cond.elem() != Elem::boolean) throw misuse("select's condition is " + type_name(cond));
  V shape;
  auto [x, y] = unify(im, a, b, "select", &shape);
  llvm::Value* c = im.use(cond);
  if (cond.width() != 1 && cond.width() != shape.width()) throw misuse("select: condition and values differ in width");
  return im.wrap_like(im.ir.CreateSelect(c, x, y), shape);
}

V Builder::extract(V v, int i) {
  if (i < 0 || i >= v.width()) throw misuse(fmt::format("element {} of {}", i, type_name(v)));
  if (v.width() == 1) return v;
  return impl_->wrap(impl_->ir.CreateExtractElement(impl_->use(v), uint64_t(i)), v.elem(), 1, v.pointee());
}

V Builder::shuffle(V a, V b, const std::vector<int>& indices) {
  auto& im = *impl_;
  if (a.elem() != b.elem() || a.width() != b.width()) throw misuse("shuffle of vectors of different types");
  for (int i : indices)
    if (i < 0 || i >= 2 * a.width()) throw misuse(fmt::format("shuffle index {} outside 0..{}", i, 2 * a.width() - 1));
  llvm::Value* x = im.use(a);
  llvm::Value* y = im.use(b);
  if (a.width() == 1) {  // scalars: as one-element vectors
    x = im.ir.CreateVectorSplat(1, x);
    y = im.ir.CreateVectorSplat(1, y);
  }
  llvm::Value* r = im.ir.CreateShuffleVector(x, y, indices);
  if (indices.size() == 1) r = im.ir.CreateExtractElement(r, uint64_t(0));
  return im.wrap(r, a.elem(), int(indices.size()), a.pointee());
}

V Builder::shuffle(V a, const std::vector<int>& indices) { return shuffle(a, a, indices); }

namespace {
V float_call(Builder::Impl& im, llvm::Intrinsic::ID id, std::initializer_list<V> args, const char* name) {
  std::vector<llvm::Value*> xs;
  V shape = *args.begin();
  for (const V& v : args) {
    if (v.elem() != Elem::f32 || v.width() != shape.width())
      throw misuse(fmt::format("{} takes f32 values of one width; got {}", name, type_name(v)));
    xs.push_back(im.use(v));
  }
  return im.wrap_like(im.ir.CreateIntrinsic(id, {xs[0]->getType()}, xs), shape);
}
}  // namespace

// Explicit fma on both targets: NVPTX would otherwise contract mul+add where the host does not.
V Builder::fma(V a, V b, V c) { return float_call(*impl_, llvm::Intrinsic::fma, {a, b, c}, "fma"); }
// llvm.sqrt without fast-math is IEEE sqrt on both targets (sqrt.rn.f32 on NVPTX).
V Builder::sqrt(V v) { return float_call(*impl_, llvm::Intrinsic::sqrt, {v}, "sqrt"); }
V Builder::abs(V v) { return float_call(*impl_, llvm::Intrinsic::fabs, {v}, "abs"); }

V Builder::min(V a, V b) {
  if (a.elem() == Elem::f32) return float_call(*impl_, llvm::Intrinsic::minnum, {a, b}, "min");
  return select(a < b, a, b);
}
V Builder::max(V a, V b) {
  if (a.elem() == Elem::f32) return float_call(*impl_, llvm::Intrinsic::maxnum, {a, b}, "max");
  return select(a > b, a, b);
}

// exp written out (no libm call, no ex2.approx): the same instructions, and so the same bits, on both
// targets. x = k ln2 + r with ln2 in two parts (Cody-Waite), |r| <= ln2/2; exp(r) by its degree-7
// Taylor polynomial (error < 2^-27 relative on that range) in fma steps; then scaled by 2^k through
// the exponent bits, in two steps so that results near the ends of the range stay exact.
V Builder::exp(V x) {
  if (x.elem() != Elem::f32) throw misuse("exp takes f32");
  const int w = x.width();
  V xc = min(max(x, splat(f32(-104.0f), w)), splat(f32(88.8f), w));  // exp underflows / overflows past these
  // k = floor(x / ln2 + 0.5): the conversion truncates toward zero, so step down where that rounded up.
  V t = fma(xc, splat(f32(1.44269504f), w), splat(f32(0.5f), w));
  V ti = cast(cast(t, Elem::i32), Elem::f32);
  V k = select(ti > t, ti - 1.0, ti);
  V r = fma(k, splat(f32(-0.693145751953125f), w), xc);
  r = fma(k, splat(f32(-1.428606765330187045e-06f), w), r);
  static const float c[] = {1.0f / 5040, 1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f};
  V p = splat(f32(c[0]), w);
  for (int i = 1; i < 8; ++i) p = fma(p, r, splat(f32(c[i]), w));
  // 2^k as two factors 2^(k/2) and 2^(k - k/2), each a normal float for k in [-151, 129].
  V ki = cast(k, Elem::i32);
  V k1 = ki / 2;
  V k2 = ki - k1;
  auto pow2 = [&](V e) {
    auto& im = *impl_;
    llvm::Value* bits = im.ir.CreateShl(im.use(e + 127), 23);
    return im.wrap(im.ir.CreateBitCast(bits, im.type_of(Elem::f32, w)), Elem::f32, w);
  };
  V r2 = p * pow2(k1) * pow2(k2);
  return select(x != x, x, r2);  // NaN stays NaN (the clamp's min/max would drop it)
}

// sin and cos of a fixed-point phase (turns / 2^64 of a turn), in integer steps then f32 fma steps,
// so both targets give the same bits and no angle is ever formed in floating point:
//  - the top 3 bits pick the octant; the 61 below are the distance r into it, taken from the octant's
//    far end in odd octants (exactly, in integers), so psi = r * (pi/4) / 2^61 lies in [0, pi/4];
//  - psi from r's top 48 bits as two exact 24-bit halves, with pi/4 * 2^-24 split in two (Cody-Waite):
//    psi is off by its own rounding only (<= 3e-8);
//  - sin and cos of psi by Cephes' sinf/cosf polynomials on [0, pi/4] (error < 2e-9 before rounding);
//  - the octant swaps them and sets their signs.
std::pair<V, V> Builder::sincos_turns(V turns) {
  if (turns.elem() != Elem::i64) throw misuse("sincos_turns takes an i64 phase, got " + type_name(turns));
  const int w = turns.width();
  auto i64c = [&](int64_t c) { return splat(i64(c), w); };
  auto f32c = [&](float c) { return splat(f32(c), w); };
  V octant = shift_right(turns, 61);
  V r = turns & i64c((int64_t(1) << 61) - 1);
  V odd = (octant & i64c(1)) != i64c(0);
  r = select(odd, i64c(int64_t(1) << 61) - r, r);  // in [0, 2^61]
  V hi = cast(shift_right(r, 37), Elem::f32);       // <= 2^24: exact
  V lo = cast(shift_right(r, 13) & i64c((1 << 24) - 1), Elem::f32);
  const double c1 = 0.78539816339744830962 / 16777216.0;  // (pi/4) / 2^24
  const float c1_hi = float(c1), c1_lo = float(c1 - double(c1_hi));
  V psi = fma(hi, f32c(c1_hi), fma(hi, f32c(c1_lo), lo * f32c(float(c1 / 16777216.0))));
  V z = psi * psi;
  V sp = fma(fma(f32c(-1.9515295891e-4f), z, f32c(8.3321608736e-3f)), z, f32c(-1.6666654611e-1f));
  V s = fma(z * psi, sp, psi);
  V cp = fma(fma(f32c(2.443315711809948e-5f), z, f32c(-1.388731625493765e-3f)), z, f32c(4.166664568298827e-2f));
  V c = fma(z * z, cp, fma(f32c(-0.5f), z, f32c(1.0f)));
  // Octant j: (sin, cos) = (s, c), (c, s), (c, -s), (s, -c), (-s, -c), (-c, -s), (-c, s), (-s, c).
  V swap = ((octant + i64c(1)) & i64c(2)) != i64c(0);   // j = 1, 2, 5, 6
  V sin_neg = (octant & i64c(4)) != i64c(0);            // j = 4..7
  V cos_neg = ((octant + i64c(2)) & i64c(4)) != i64c(0);  // j = 2..5
  V sin_mag = select(swap, c, s), cos_mag = select(swap, s, c);
  return {select(sin_neg, -sin_mag, sin_mag), select(cos_neg, -cos_mag, cos_mag)};
}

}  // namespace ropejit::lang

namespace ropejit::lang {

// sin and cos of an f32 angle in radians, accurately at any magnitude: the angle a = m x 2^e (m the
// 24-bit significand) is reduced to turns exactly in integers, Payne-Hanek style: the phase is
// m x floor(2^(64 + e) / 2pi) mod 2^64, the 64 bits of 1/(2pi) that matter at this exponent taken
// from its first 192 bits (angles below 2^-40 rad give phase 0, which sincos_turns turns into sin 0,
// cos 1; f32's largest, 2^128, still fits); what is dropped (m times a fraction below 1) is under
// 2^-40 of a turn.
// Then sincos_turns. Negative angles negate the phase.
std::pair<V, V> Builder::sincos(V radians) {
  if (radians.elem() != Elem::f32) throw misuse("sincos takes f32 radians, got " + type_name(radians));
  auto& im = *impl_;
  const int w = radians.width();
  auto i64c = [&](uint64_t c) { return splat(i64(int64_t(c)), w); };
  V bits = cast(im.wrap(im.ir.CreateBitCast(im.use(radians), im.type_of(Elem::i32, w)), Elem::i32, w), Elem::i64) &
           i64c(0xffffffffu);
  V negative = shift_right(bits, 31) != i64c(0);
  V biased = shift_right(bits, 23) & i64c(0xff);
  V fraction = bits & i64c(0x7fffff);
  V normal = biased != i64c(0);
  V m = select(normal, fraction | i64c(0x800000), fraction);
  V s = select(normal, biased - i64c(150), i64c(uint64_t(-149))) + i64c(64);  // a = m x 2^(s - 64)
  // floor(2^192 / 2pi) in three words, most significant first. The window is a funnel shift of two
  // adjacent words (s < 64: a zero word, then the
  // first one).
  const uint64_t w0 = 0x28be60db9391054aull, w1 = 0x7f09d5f47d4d3770ull, w2 = 0x36d8a5664f10e410ull;
  V below64 = s < i64c(64), below128 = s < i64c(128);
  V hi = select(below64, i64c(0), select(below128, i64c(w0), i64c(w1)));
  V lo = select(below64, i64c(w0), select(below128, i64c(w1), i64c(w2)));
  llvm::Value* window = im.ir.CreateIntrinsic(llvm::Intrinsic::fshl, {im.type_of(Elem::i64, w)},
                                              {im.use(hi), im.use(lo), im.use(s & i64c(63))});
  V c = select(s > i64c(0), im.wrap(window, Elem::i64, w), i64c(0));  // s <= 0: below 2^-40 of a turn
  V phase = m * c;
  return sincos_turns(select(negative, i64c(0) - phase, phase));
}

}  // namespace ropejit::lang
