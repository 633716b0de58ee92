// ropejit's kernel language: write a kernel once in C++, run it on the GPU (LLVM -> PTX -> the CUDA
// driver) and on this CPU (LLVM ORC), JIT-compiled and cached. In the spirit of Triton, one level
// lower: a kernel is a program of `threads` threads, launched over a grid of up to 3 dimensions;
// the body is C++ that builds the program's code through a `Builder`, once per specialisation.
//
//   Signature sig{Arg::pointer("x", DType::bf16), Arg::pointer("y", DType::bf16), Arg::int64("n")};
//   Kernel k("scale2", sig, "bf16", 128, [](Builder& b) {
//     Value i = b.program_id() * b.threads() + b.thread_id();
//     Value ok = i < b.param("n");
//     b.store(b.param("y") + i, b.load(b.param("x") + i, 1, {.mask = ok}) * 2.0, {.mask = ok});
//   });
//   ArgPack args(k.signature());
//   args.set("x", x).set("y", y).set("n", n);
//   k.launch(Backend::cuda, Grid{(n + 127) / 128}, args, stream);
//
// Values are typed (f32, i32, i64, bool; scalars or fixed-width vectors; pointers with an element
// dtype). Loads widen f16/bf16/f32 storage to f32 and stores round f32 back once, to nearest even;
// all arithmetic is IEEE, without fast-math, and fma only where written.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ropejit/core.hpp"

namespace ropejit {

// ---- Kernel parameters: written once, they drive the code, the host entry and the launch ----

enum class ArgKind : uint8_t { pointer, int64, float32 };

struct Arg {
  std::string name;
  ArgKind kind = ArgKind::int64;
  DType dtype = DType::f32;  // pointers: the element type
  bool readonly = false;     // pointers: never written by the kernel
  bool noalias = false;      // pointers: no other parameter reaches the same memory

  static Arg pointer(std::string name, DType dtype, bool readonly = false, bool noalias = false) {
    return Arg{std::move(name), ArgKind::pointer, dtype, readonly, noalias};
  }
  static Arg int64(std::string name) { return Arg{std::move(name), ArgKind::int64}; }
  static Arg float32(std::string name) { return Arg{std::move(name), ArgKind::float32}; }
};

class Signature {
 public:
  Signature() = default;
  Signature(std::initializer_list<Arg> args);
  explicit Signature(std::vector<Arg> args);
  const std::vector<Arg>& args() const { return args_; }
  size_t size() const { return args_.size(); }
  // Index of the parameter called `name`; throws Error naming it when there is none.
  size_t index(std::string_view name) const;
  // "(ptr<bf16> x, i64 n, ...)", for messages.
  std::string describe() const;

 private:
  std::vector<Arg> args_;
};

// The values of one launch, in the signature's order, as cuLaunchKernel and the host entry take them.
// Holds them inline (no allocation): at most kMaxArgs parameters.
class ArgPack {
 public:
  static constexpr size_t kMaxArgs = 64;
  // `trusted`: add() skips its name comparisons (for a packer whose order was already checked once).
  explicit ArgPack(const Signature& signature, bool trusted = false);
  ArgPack(Signature&&, bool = false) = delete;  // it keeps a reference: a temporary would dangle
  ArgPack(const ArgPack&);
  ArgPack& operator=(const ArgPack&) = delete;
  // By name; throws Error when the name is unknown or the value's kind does not match.
  ArgPack& set(std::string_view name, const void* pointer);
  ArgPack& set(std::string_view name, int64_t value);
  ArgPack& set(std::string_view name, int value) { return set(name, int64_t(value)); }
  ArgPack& set(std::string_view name, double value);  // a float32 parameter
  // In order, each naming the next parameter (the fast form the ops use: one comparison each, none
  // once trusted).
  ArgPack& add(const char* name, const void* pointer) { return add_bits(name, ArgKind::pointer, uint64_t(uintptr_t(pointer))); }
  ArgPack& add(const char* name, int64_t value) { return add_bits(name, ArgKind::int64, uint64_t(value)); }
  ArgPack& add(const char* name, float value);
  // Throws Error naming the first parameter never given.
  void check_complete() const;
  const Signature& signature() const { return *signature_; }
  void** pointers() { return pointers_; }

 private:
  void put(size_t index, ArgKind kind, uint64_t bits, std::string_view name);
  ArgPack& add_bits(const char* name, ArgKind kind, uint64_t bits) {
    if (trusted_ && next_ < size_) {
      slots_[next_++] = bits;
      return *this;
    }
    return add_checked(name, kind, bits);
  }
  ArgPack& add_checked(const char* name, ArgKind kind, uint64_t bits);
  const Signature* signature_;
  size_t size_ = 0;
  bool trusted_ = false;
  uint64_t given_ = 0;  // bit i: parameter i was set
  size_t next_ = 0;
  uint64_t slots_[kMaxArgs];  // the first size_ are used
  void* pointers_[kMaxArgs];
};

// ---- The language ----

namespace lang {

enum class Elem : uint8_t { boolean, i16, i32, i64, f32, pointer };  // i16: raw 16-bit storage

// Cache policy of a global access. Hints only: they change speed, never results.
enum class CacheHint : uint8_t {
  normal,
  readonly,  // never written while the kernel runs: NVPTX may use the non-coherent path (ld.global.nc)
  stream,    // touched once: NVPTX 16-byte accesses use ld/st.global.cs (evict first); others plain
};

class Builder;

// A value of the program being built: a handle, cheap to copy. Operators build code.
class Value {
 public:
  Value() = default;
  bool valid() const { return handle_ != nullptr; }
  Elem elem() const { return elem_; }
  int width() const { return width_; }  // 1: a scalar
  DType pointee() const { return pointee_; }  // pointers only

  // Internal: made by the Builder.
  Value(Builder* b, void* handle, Elem elem, int width, DType pointee, int segment)
      : b_(b), handle_(handle), elem_(elem), width_(width), pointee_(pointee), segment_(segment) {}
  Builder* builder() const { return b_; }
  void* handle() const { return handle_; }
  int segment() const { return segment_; }

 private:
  Builder* b_ = nullptr;
  void* handle_ = nullptr;
  Elem elem_ = Elem::i64;
  int width_ = 1;
  DType pointee_ = DType::f32;
  int segment_ = -1;  // host backend: the thread loop that defined it (-1: the same for every thread)
};

// Arithmetic: both sides of the same type; a number on one side takes the other side's type (a
// scalar against a vector is splatted). pointer + integer advances by elements of the pointee.
Value operator+(Value a, Value b);
Value operator-(Value a, Value b);
Value operator*(Value a, Value b);
Value operator/(Value a, Value b);  // integers: signed
Value operator%(Value a, Value b);  // integers: signed remainder
Value operator-(Value a);
Value operator<(Value a, Value b);
Value operator<=(Value a, Value b);
Value operator>(Value a, Value b);
Value operator>=(Value a, Value b);
Value operator==(Value a, Value b);
Value operator!=(Value a, Value b);
Value operator&(Value a, Value b);  // booleans and integers
Value operator|(Value a, Value b);
Value operator!(Value a);
// Every operator above also takes a number on either side.
#define ROPEJIT_LANG_MIXED_OPERATORS(X) X(+) X(-) X(*) X(/) X(%) X(<) X(<=) X(>) X(>=) X(==) X(!=)
#define ROPEJIT_LANG_MIXED(op)          \
  Value operator op(Value a, double b); \
  Value operator op(double a, Value b);
ROPEJIT_LANG_MIXED_OPERATORS(ROPEJIT_LANG_MIXED)
#undef ROPEJIT_LANG_MIXED

// Options of one global access.
struct Access {
  Value mask = Value();   // bool: the access happens only where true (a scalar covers the whole vector)
  Value other = Value();  // a load's value where masked off (default 0)
  CacheHint hint = CacheHint::normal;
  int align = 0;  // bytes the address is aligned to; 0: the access's size (at most 16)
};

enum class Target : uint8_t { nvptx, host };

class Builder {
 public:
  struct Impl;
  explicit Builder(Impl* impl) : impl_(impl) {}
  Builder(const Builder&) = delete;
  Builder& operator=(const Builder&) = delete;

  Target target() const;
  int threads() const;  // per program, fixed at compile time

  // Parameters by name (pointers, i64, f32), program ids (i64) along x, y, z, the thread (i64).
  Value param(std::string_view name);
  Value program_id(int axis = 0);
  Value thread_id();

  // Constants.
  Value i64(int64_t v);
  Value i32(int32_t v);
  Value f32(float v);
  Value boolean(bool v);

  // Unsigned integer forms, for values known to be non-negative (cheaper than signed / and %), and
  // a < b as unsigned: one comparison for 0 <= a < b.
  Value udiv(Value a, Value b);
  Value urem(Value a, Value b);
  Value ult(Value a, Value b);
  // Integer shifts by a constant: left, and logical (zero-filling) right.
  Value shift_left(Value v, int bits);
  Value shift_right(Value v, int bits);

  // Conversions: int <-> int (sign-extending), int -> f32, f32 -> int (toward zero), bool -> int.
  Value cast(Value v, Elem to);
  Value splat(Value scalar, int width);
  Value select(Value cond, Value a, Value b);

  // Vectors: element i; a shuffle of the concatenation of a and b (indices into it); lanes joined.
  Value extract(Value v, int i);
  Value shuffle(Value a, Value b, const std::vector<int>& indices);
  Value shuffle(Value a, const std::vector<int>& indices);

  // Maths, elementwise, f32 (IEEE; min/max also on integers).
  Value fma(Value a, Value b, Value c);
  Value sqrt(Value v);
  Value exp(Value v);  // correctly rounded to within a few ulps on both targets (no approximation)
  // sin and cos of 2 pi x turns / 2^64, `turns` an i64 (read as unsigned) fixed-point fraction of a
  // turn: the phase carries no rounding, however large the angle it came from. f32 results within
  // 1.2e-7 of the exact values (test_language measures it); the same bits on both targets.
  std::pair<Value, Value> sincos_turns(Value turns);
  // sin and cos of f32 radians, accurate at any magnitude (the angle reduced to turns exactly, then
  // sincos_turns): within 1.2e-7 of the exact values of the f32 angle; the same bits on both targets.
  std::pair<Value, Value> sincos(Value radians);
  Value abs(Value v);
  Value min(Value a, Value b);
  Value max(Value a, Value b);

  // Global memory. `width` consecutive elements from `ptr`: float storage (f32, f16, bf16) is
  // widened to f32, i32/i64 stay integers. Stores round f32 to the pointee dtype.
  Value load(Value ptr, int width = 1, const Access& access = {});
  void store(Value ptr, Value value, const Access& access = {});
  // The storage bits, unconverted (copies that must be bit-exact); stored back with store_bits.
  Value load_bits(Value ptr, int width = 1, const Access& access = {});
  void store_bits(Value ptr, Value bits, const Access& access = {});
  // Storage bits of `dtype` (as load_bits gives them) widened to values, as load would.
  Value from_bits(Value bits, DType dtype);

  // Across the threads of the program: each element of `v` (f32) summed (or maxed) over groups of
  // `lanes` consecutive threads (0: the whole program); every thread of a group gets the group's
  // result. `lanes` is a power of two, or any count up to 32: then each warp (32 threads, or the
  // whole program if smaller: W threads) holds W / lanes groups from its first thread, summed in lane
  // order, and its last W % lanes threads get their own value back. NVPTX: warp shuffles, plus shared memory where a group spans warps. Host:
  // the program's threads run as a loop that splits here, in the GPU's order of operations, so the
  // two backends agree bit for bit. Every thread must reach it: not inside if_then or for_range,
  // and not after return_if.
  Value reduce_sum(Value v, int lanes = 0);
  Value reduce_max(Value v, int lanes = 0);

  // Control flow. Values made inside a body stay inside it.
  void if_then(Value cond, const std::function<void()>& body);
  void for_range(Value begin, Value end, int64_t step, const std::function<void(Value)>& body);
  // This thread stops here when cond holds.
  void return_if(Value cond);
  // The whole program stops here when cond holds; cond must be the same for all its threads.
  void return_program_if(Value cond);

  Impl& impl() { return *impl_; }

 private:
  Impl* impl_;
};

}  // namespace lang

// ---- A kernel of your own: defined once, compiled per backend and device, cached ----

struct PrecompiledKernel;

struct Grid {
  int64_t x = 1, y = 1, z = 1;  // programs along each axis
};

class Kernel {
 public:
  // `name`: the kernel's name (letters, digits, '_'); `spec_key`: what the body is specialised on,
  // plus a version of your own. Together they name the kernel in the disk cache, so change the key
  // whenever the body's code changes. `threads`: per program, a power of two up to 1024.
  Kernel(std::string name, Signature signature, std::string spec_key, int threads,
         std::function<void(lang::Builder&)> body);
  ~Kernel();
  Kernel(Kernel&&) noexcept;
  Kernel& operator=(Kernel&&) noexcept;

  const Signature& signature() const;
  std::string key() const;  // name.spec_key.tN
  // Runs it: on the GPU in the current context (or device `device`'s primary one) on `stream`, or on
  // this CPU (host pointers; synchronous). The first launch per backend and device builds it (or
  // loads it from a bundle or the disk cache); later ones only launch.
  void launch(Backend backend, Grid grid, ArgPack& args, void* stream = nullptr, int device = 0) const;
  // PTX for an sm (and the PTX ISA this build emits), e.g. for ptxas or reading.
  std::string ptx(int sm) const;

  struct Impl;

 private:
  friend std::vector<PrecompiledKernel> precompile(const Kernel& kernel, const std::vector<int>& sms);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ropejit
