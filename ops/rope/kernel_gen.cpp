#include "ops/rope/kernel_gen.hpp"

#include <algorithm>
#include <vector>

#include "ops/rope/kernel_args.hpp"

namespace ropejit::rope {

using codegen::CacheHint;
using codegen::KernelBuilder;
using codegen::Param;
using codegen::ParamKind;
using llvm::Value;

namespace {

// Parameter indices, matching KernelArgs::pointers().
enum Arg : size_t {
  kQIn, kQOut, kKIn, kKOut, kCos, kSin, kPosIds, kPosOffset, kSeqLen, kMaxPos,
  kQInStrides = 10, kQOutStrides = 13, kKInStrides = 16, kKOutStrides = 19,
};

std::vector<Param> kernel_params(const RopeSpec& spec) {
  // In place the kernel reads and writes through the out pointers only, so each is still noalias.
  bool oop = !spec.in_place;
  std::vector<Param> p = {
      {"q_in", ParamKind::ptr, oop, true},   {"q_out", ParamKind::ptr, true, false},
      {"k_in", ParamKind::ptr, oop, true},   {"k_out", ParamKind::ptr, true, false},
      {"cos", ParamKind::ptr, true, true},   {"sin", ParamKind::ptr, true, true},
      {"position_ids", ParamKind::ptr, true, true},
      {"position_offset", ParamKind::i64},   {"seq_len", ParamKind::i64}, {"max_position", ParamKind::i64},
  };
  for (const char* t : {"q_in", "q_out", "k_in", "k_out"})
    for (const char* d : {"batch", "seq", "head"}) p.push_back({std::string(t) + "_stride_" + d, ParamKind::i64});
  static_assert(KernelArgs::kCount == 22);
  return p;
}

class RopeKernel {
 public:
  RopeKernel(KernelBuilder& kb, const RopeSpec& spec, const LaunchConfig& config)
      : kb_(kb), ir_(kb.ir()), spec_(spec), config_(config), map_(mapping(spec, config)) {}

  void emit() {
    Value* pid = kb_.program_id();
    Value* tid = kb_.thread_id();
    Value* seq_len = kb_.param(kSeqLen);
    batch_ = ir_.CreateUDiv(pid, seq_len);
    seq_ = ir_.CreateSub(pid, ir_.CreateMul(batch_, seq_len));

    Value* pos = nullptr;
    if (spec_.positions == PositionKind::offset) {
      pos = ir_.CreateAdd(kb_.param(kPosOffset), seq_);
    } else {
      DType t = spec_.positions == PositionKind::ids_i32 ? DType::i32 : DType::i64;
      pos = kb_.load_index(t, kb_.element_ptr(t, kb_.param(kPosIds), pid));
    }
    // A position outside the table (negative ones too, as unsigned) leaves the token untouched:
    // nothing out of bounds is read or written.
    kb_.return_if(ir_.CreateICmpUGE(pos, kb_.param(kMaxPos)));

    chunk_ = ir_.CreateURem(tid, kb_.i64(map_.chunks));
    group_ = ir_.CreateUDiv(tid, kb_.i64(map_.chunks));
    kb_.return_if(ir_.CreateICmpUGE(group_, kb_.i64(map_.groups)));
    compute_pass_offsets();

    // cos/sin of this chunk's W pairs: loaded once, reused for every head.
    Value* row = ir_.CreateMul(pos, kb_.i64(map_.pairs));
    for (auto [first_pair, count] : table_ranges()) {
      Value* at = ir_.CreateAdd(row, first_pair);
      unsigned align = unsigned(std::min(16, count * dtype_size(spec_.table_dtype)));
      cos_.push_back(kb_.load_f32(spec_.table_dtype, kb_.element_ptr(spec_.table_dtype, kb_.param(kCos), at), unsigned(count),
                                  align, CacheHint::readonly));
      sin_.push_back(kb_.load_f32(spec_.table_dtype, kb_.element_ptr(spec_.table_dtype, kb_.param(kSin), at), unsigned(count),
                                  align, CacheHint::readonly));
    }

    std::vector<Tensor> tensors = {tensor(kQIn, kQOut, kQInStrides, kQOutStrides, spec_.q_heads)};
    if (spec_.k_heads > 0) tensors.push_back(tensor(kKIn, kKOut, kKInStrides, kKOutStrides, spec_.k_heads));
    heads(tensors);
  }

 private:
  struct Tensor;
  struct Access {
    const Tensor* t = nullptr;
    Value* in_base;   // element offset of the head's first element, input
    Value* out_base;  // and output
    Value* valid;     // head < heads, or nullptr when always true
    std::vector<Value*> x;  // loaded rotary parts, f32
    std::vector<Value*> pass;  // loaded pass-through parts, raw
  };

  Value* token_offset(size_t strides) {
    return ir_.CreateAdd(ir_.CreateMul(batch_, kb_.param(strides)), ir_.CreateMul(seq_, kb_.param(strides + 1)));
  }

  unsigned x_align(int width) const { return unsigned(width * dtype_size(spec_.dtype)); }

  // GPT-J with W >= 2 keeps each access whole pairs: lane c reads the W elements at cW (pairs cW/2..)
  // and at P + cW (pairs P/2 + cW/2..), so each load instruction is contiguous across the warp, as
  // NeoX's are. With W = 1 a lane reads one pair's two elements.
  bool gptj_split() const { return spec_.style == RopeStyle::gptj && map_.width >= 2; }

  // Element offsets (within a head) of the W-element accesses of this lane's chunk.
  std::vector<Value*> rotary_offsets() {
    Value* cw = ir_.CreateMul(chunk_, kb_.i64(map_.width));
    if (spec_.style == RopeStyle::neox || gptj_split()) return {cw, ir_.CreateAdd(cw, kb_.i64(map_.pairs))};
    Value* start = ir_.CreateMul(cw, kb_.i64(2));
    return {start, ir_.CreateAdd(start, kb_.i64(map_.width))};
  }

  // Table ranges (first pair, count) this lane needs, one per distinct cos/sin vector.
  std::vector<std::pair<Value*, int>> table_ranges() {
    Value* cw = ir_.CreateMul(chunk_, kb_.i64(map_.width));
    if (!gptj_split()) return {{cw, map_.width}};
    const int half = map_.width / 2;
    Value* first = ir_.CreateMul(chunk_, kb_.i64(half));
    return {{first, half}, {ir_.CreateAdd(first, kb_.i64(map_.pairs / 2)), half}};
  }

  struct Tensor {
    Value *in_ptr, *out_ptr, *in_tok, *out_tok, *in_head_stride, *out_head_stride;
    int heads;
  };

  Tensor tensor(size_t in_arg, size_t out_arg, size_t in_strides, size_t out_strides, int heads) {
    // In place reads through the out pointer and strides (they equal the in ones).
    if (spec_.in_place) {
      in_arg = out_arg;
      in_strides = out_strides;
    }
    return Tensor{kb_.param(in_arg), kb_.param(out_arg), token_offset(in_strides), token_offset(out_strides),
                  kb_.param(in_strides + 2), kb_.param(out_strides + 2), heads};
  }

  // Straight-line code over every head this thread owns: q heads g, g+G, ..., then k heads likewise.
  // Slots are taken `unroll` at a time: all their loads are issued before the first store, so they
  // are in flight together (across the q/k boundary too). A slot past a tensor's last head (when G
  // does not divide its head count) loads a valid head and skips its stores.
  void heads(const std::vector<Tensor>& tensors) {
    struct Slot {
      const Tensor* t;
      int iter;
    };
    std::vector<Slot> slots;
    for (const Tensor& t : tensors)
      for (int i = 0; i * map_.groups < t.heads; ++i) slots.push_back({&t, i});
    const auto offsets = rotary_offsets();
    const CacheHint in_hint = config_.streaming ? CacheHint::stream
                              : spec_.in_place  ? CacheHint::normal
                                                : CacheHint::readonly;
    const CacheHint out_hint = config_.streaming ? CacheHint::stream : CacheHint::normal;
    const size_t unroll = size_t(std::max(1, config_.unroll));
    for (size_t first = 0; first < slots.size(); first += unroll) {
      std::vector<Access> acc;
      for (size_t j = first; j < std::min(slots.size(), first + unroll); ++j) {
        const Tensor& t = *slots[j].t;
        Value* head = ir_.CreateAdd(group_, kb_.i64(int64_t(slots[j].iter) * map_.groups));
        Access a;
        a.t = &t;
        a.valid = nullptr;
        if ((slots[j].iter + 1) * map_.groups > t.heads) {
          a.valid = ir_.CreateICmpULT(head, kb_.i64(t.heads));
          head = ir_.CreateSelect(a.valid, head, kb_.i64(t.heads - 1));
        }
        a.in_base = ir_.CreateAdd(t.in_tok, ir_.CreateMul(head, t.in_head_stride));
        a.out_base = ir_.CreateAdd(t.out_tok, ir_.CreateMul(head, t.out_head_stride));
        for (Value* off : offsets)
          a.x.push_back(kb_.load_f32(spec_.dtype, kb_.element_ptr(spec_.dtype, t.in_ptr, ir_.CreateAdd(a.in_base, off)),
                                     map_.width, x_align(map_.width), in_hint));
        for (Value* off : pass_offsets_)
          a.pass.push_back(kb_.load_raw(spec_.dtype,
                                        kb_.element_ptr(spec_.dtype, t.in_ptr, ir_.CreateAdd(a.in_base, off)),
                                        map_.pass_width, x_align(map_.pass_width), CacheHint::readonly));
        acc.push_back(std::move(a));
      }
      for (Access& a : acc) {
        auto store = [&] {
          auto y = rotate(a.x);
          for (size_t i = 0; i < offsets.size(); ++i)
            kb_.store_f32(spec_.dtype, y[i],
                          kb_.element_ptr(spec_.dtype, a.t->out_ptr, ir_.CreateAdd(a.out_base, offsets[i])),
                          x_align(map_.width), out_hint);
          store_pass(a, a.t->out_ptr);
        };
        if (a.valid)
          kb_.if_then(a.valid, store);
        else
          store();
      }
    }
  }

  // Pass-through (out of place, rotary_dim < head_dim): lane c copies chunks c, c + C, ... of the
  // elements [rotary_dim, head_dim). Offsets past the end are clamped; their stores are skipped.
  void compute_pass_offsets() {
    std::vector<Value*> offs;
    pass_valid_.clear();
    for (int j = 0; j * map_.chunks < map_.pass_chunks; ++j) {
      Value* idx = ir_.CreateAdd(chunk_, kb_.i64(j * map_.chunks));
      Value* valid = nullptr;
      if ((j + 1) * map_.chunks > map_.pass_chunks) {
        valid = ir_.CreateICmpULT(idx, kb_.i64(map_.pass_chunks));
        idx = ir_.CreateSelect(valid, idx, kb_.i64(map_.pass_chunks - 1));
      }
      pass_valid_.push_back(valid);
      offs.push_back(ir_.CreateAdd(kb_.i64(spec_.rotary_dim), ir_.CreateMul(idx, kb_.i64(map_.pass_width))));
    }
    pass_offsets_ = offs;
  }

  void store_pass(const Access& a, Value* out_ptr) {
    for (size_t j = 0; j < a.pass.size(); ++j) {
      auto st = [&] {
        kb_.store_raw(a.pass[j],
                      kb_.element_ptr(spec_.dtype, out_ptr, ir_.CreateAdd(a.out_base, pass_offsets_[j])),
                      x_align(map_.pass_width), CacheHint::normal);
      };
      if (pass_valid_[j])
        kb_.if_then(pass_valid_[j], st);
      else
        st();
    }
  }

  // (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin) in f32, one fma each, rounded once on store.
  std::pair<Value*, Value*> rotate_pair(Value* x1, Value* x2, Value* c, Value* s) {
    return {kb_.fma(x1, c, ir_.CreateFNeg(ir_.CreateFMul(x2, s))), kb_.fma(x2, c, ir_.CreateFMul(x1, s))};
  }

  static std::vector<int> iota(unsigned n, unsigned start = 0, unsigned step = 1) {
    std::vector<int> v(n);
    for (unsigned i = 0; i < n; ++i) v[i] = int(start + i * step);
    return v;
  }

  // Interleaved pairs of one vector: evens and odds, rotated, interleaved again.
  Value* rotate_interleaved(Value* v, Value* c, Value* s) {
    unsigned n = llvm::cast<llvm::FixedVectorType>(v->getType())->getNumElements() / 2;
    auto [y1, y2] = rotate_pair(ir_.CreateShuffleVector(v, iota(n, 0, 2)), ir_.CreateShuffleVector(v, iota(n, 1, 2)), c, s);
    std::vector<int> inter(2 * n);
    for (unsigned i = 0; i < n; ++i) inter[2 * i] = int(i), inter[2 * i + 1] = int(n + i);
    return ir_.CreateShuffleVector(y1, y2, inter);
  }

  std::vector<Value*> rotate(const std::vector<Value*>& x) {
    const unsigned w = unsigned(map_.width);
    if (spec_.style == RopeStyle::neox) {
      auto [y1, y2] = rotate_pair(x[0], x[1], cos_[0], sin_[0]);
      return {y1, y2};
    }
    if (gptj_split()) return {rotate_interleaved(x[0], cos_[0], sin_[0]), rotate_interleaved(x[1], cos_[1], sin_[1])};
    Value* out = rotate_interleaved(ir_.CreateShuffleVector(x[0], x[1], iota(2 * w)), cos_[0], sin_[0]);
    return {ir_.CreateShuffleVector(out, iota(w)), ir_.CreateShuffleVector(out, iota(w, w))};
  }

  KernelBuilder& kb_;
  llvm::IRBuilder<>& ir_;
  const RopeSpec& spec_;
  const LaunchConfig& config_;
  Mapping map_;
  Value* batch_ = nullptr;
  Value* seq_ = nullptr;
  Value* chunk_ = nullptr;
  Value* group_ = nullptr;
  std::vector<Value*> cos_, sin_;  // per table range
  std::vector<Value*> pass_offsets_;
  std::vector<Value*> pass_valid_;
};

}  // namespace

std::string generate_rope_kernel(llvm::Module& module, codegen::Target target, const RopeSpec& spec,
                                 const LaunchConfig& config, const std::string& name) {
  spec.validate();
  validate_config(spec, config);
  KernelBuilder kb(module, target, name, kernel_params(spec), config.threads);
  RopeKernel(kb, spec, config).emit();
  return kb.finish();
}

}  // namespace ropejit::rope
