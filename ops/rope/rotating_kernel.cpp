// One program per token (or several, each with its own threads). Thread t of a token owns lane c = t % L of a head (chunk c of W rotary pairs) and head
// group g = t / L; it loads the token's cos/sin for its chunk once and walks heads g, g+G, ... of q,
// then of k, reusing them. NeoX reads x[cW..] and x[P+cW..]; GPT-J with W >= 2 reads W whole pairs at
// cW and at P+cW (each load contiguous across the warp), with W = 1 the pair's two elements.
//
// RoPE: L = C lanes; no shared memory, no barriers. With the norm, L is C rounded up to a power of
// two (lanes past C load a valid chunk, add nothing and store nothing), every lane also loads its
// share of the dims outside the rotary part, and each head's sum of squares is reduced over its L lanes
// (warp shuffles, and shared memory where L > 32) before the scale, the weight and the rotation;
// fp32 throughout, rounded once.
#include "ops/rope/rotating_kernel.hpp"

#include <algorithm>
#include <functional>

#include "ops/rope/params.hpp"
#include "ops/rope/rotation.hpp"

namespace ropejit::rope {

using lang::Access;
using lang::Builder;
using lang::CacheHint;
using lang::Value;

namespace {

class RotatingKernel {
 public:
  RotatingKernel(Builder& b, const RopeSpec& spec, const LaunchConfig& config, const std::optional<NormParams>& norm)
      : b_(b), spec_(spec), config_(config), norm_(norm), map_(mapping(spec, config, norm.has_value())) {}

  void emit() {
    Token tok = token_and_position(b_, spec_, config_.tokens, config_.threads);
    token_ = tok;
    if (spec_.angles != AngleMode::table) {
      factor_ = b_.param(kAttentionFactor);
      set_base_ = b_.i64(0);
      if (spec_.frequency_sets) {  // this sequence's set of frequencies; one outside the sets: untouched
        Value set = b_.cast(b_.load(b_.param(kSetIndex) + tok.sequence, 1, {.hint = CacheHint::readonly}), lang::Elem::i64);
        tok.leave_if(b_, !b_.ult(set, b_.param(kNumSets)));
        factor_ = b_.load(b_.param(kSetFactors) + set, 1, {.hint = CacheHint::readonly});
        set_base_ = set * map_.pairs;
      }
    }
    batch_ = tok.batch;
    seq_ = tok.seq;
    Value tid = tok.thread;
    lane_ = b_.urem(tid, b_.i64(map_.lanes));
    group_ = b_.udiv(tid, b_.i64(map_.lanes));
    chunk_ = lane_;
    if (map_.lanes > map_.chunks) {  // padded lanes work on the last chunk and keep nothing
      lane_valid_ = b_.ult(lane_, b_.i64(map_.chunks));
      chunk_ = b_.select(lane_valid_, lane_, b_.i64(map_.chunks - 1));
    }
    if (!norm_) b_.return_if(!b_.ult(group_, b_.i64(map_.groups)));
    compute_pass_offsets();

    // cos/sin of this chunk's W pairs: made once, reused for every head.
    for (auto [first_pair, count] : table_ranges()) {
      auto [c, s] = cos_sin(first_pair, count);
      cos_.push_back(c);
      sin_.push_back(spec_.inverse ? -s : s);  // f32: negating is exact
    }

    std::vector<Tensor> tensors = {tensor(0, spec_.q_heads)};
    if (spec_.k_heads > 0) tensors.push_back(tensor(1, spec_.k_heads));
    if (norm_) eps_ = b_.param(kEpsParam);
    heads(tensors);
  }

 private:
  struct Tensor {
    Value in_ptr, out_ptr, in_tok, out_tok, in_head_stride, out_head_stride;
    int heads;
    Value weight;  // the norm's weight pointer
  };
  struct Slot {
    const Tensor* t;
    int iter;
  };
  struct Loaded {
    const Tensor* t = nullptr;
    Value out_base;           // element offset of the head's first element, output
    Value valid;              // head < heads, or empty when always true
    std::vector<Value> x;     // loaded rotary parts, f32
    std::vector<Value> pass;  // loaded parts outside the rotary part: raw bits (RoPE) or f32 (norm)
  };

  // Tensor 0 is q, 1 is k. In place reads through the out pointer and strides (they equal the in ones).
  Tensor tensor(int t, int heads) {
    const bool in = spec_.in_place;  // read through the out parameters
    auto token_offset = [&](bool out) {
      return batch_ * b_.param(stride_param(t, out, 0)) + seq_ * b_.param(stride_param(t, out, 1));
    };
    return Tensor{b_.param(tensor_param(t, in)),     b_.param(tensor_param(t, true)),  token_offset(in),
                  token_offset(true),                b_.param(stride_param(t, in, 2)), b_.param(stride_param(t, true, 2)),
                  heads,                             norm_ ? b_.param(weight_param(t)) : Value()};
  }

  // The norm's weight at `offset` (width elements), loaded where it is used: weights held from the
  // start would double the registers and halve the programs an SM keeps (98 against 40 registers).
  Value weight(const Tensor& t, Value offset, int width) {
    const Access a{.hint = CacheHint::readonly, .align = std::min(16, width * dtype_size(norm_->weight_dtype))};
    Value w = b_.load(t.weight + offset, width, a);
    return norm_->one_plus_weight ? w + 1.0 : w;
  }

  int x_align(int width) const { return width * dtype_size(spec_.dtype); }
  int out_align(int width) const { return std::min(16, width * dtype_size(spec_.output_dtype())); }
  bool converts() const { return spec_.output_dtype() != spec_.dtype; }
  bool gptj_split() const { return spec_.style == RopeStyle::gptj && map_.width >= 2; }

  // Element offsets (within a head) of the W-element accesses of this lane's chunk.
  std::vector<Value> rotary_offsets() {
    Value cw = chunk_ * map_.width + int64_t(spec_.rotary_offset);
    if (spec_.style == RopeStyle::neox || gptj_split()) return {cw, cw + map_.pairs};
    Value start = chunk_ * (2 * map_.width) + int64_t(spec_.rotary_offset);
    return {start, start + map_.width};
  }

  // Multimodal RoPE: for `count` pairs from `first_pair`, whether each takes the height (1) or the
  // width (2) position; the others take the temporal one.
  std::pair<Value, Value> mrope_components(Value first_pair, int count) {
    Value pair = b_.splat(first_pair, count) + constant_i64(iota(count));
    const auto& sec = spec_.mrope_section;
    if (!spec_.mrope_interleaved)
      return {(pair >= double(sec[0])) & (pair < double(sec[0] + sec[1])), pair >= double(sec[0] + sec[1])};
    Value m3 = b_.urem(pair, b_.splat(b_.i64(3), count));
    return {(m3 == 1.0) & (pair < double(3 * sec[1])), (m3 == 2.0) & (pair < double(3 * sec[2]))};
  }

  Value constant_i64(const std::vector<int>& values) {
    const int n = int(values.size());
    Value v = b_.splat(b_.i64(values[0]), n);
    for (int e = 1; e < n; ++e) {
      std::vector<int> pick = iota(n);
      pick[size_t(e)] = n + e;
      v = b_.shuffle(v, b_.splat(b_.i64(values[size_t(e)]), n), pick);
    }
    return v;
  }

  // cos and sin of `count` pairs from `first_pair` at this token's position(s): read from the table;
  // or (exact) from the fixed-point phase position x step, which wraps modulo 2^64 turns as it
  // should; or (hf_compat) from the f32 angle f32(position) x inv_freq, reduced exactly.
  std::pair<Value, Value> cos_sin(Value first_pair, int count) {
    const bool mm = spec_.multimodal();
    std::pair<Value, Value> hw;
    if (mm) hw = mrope_components(first_pair, count);
    // Per element, the position of its pair (multimodal) or the token's.
    auto positions = [&] {
      Value p = b_.splat(token_.position, count);
      if (!mm) return p;
      return b_.select(hw.first, b_.splat(token_.components[1], count),
                       b_.select(hw.second, b_.splat(token_.components[2], count), p));
    };
    if (spec_.angles != AngleMode::table) {
      Value factor = b_.splat(factor_, count);
      std::pair<Value, Value> sc;
      if (spec_.angles == AngleMode::exact) {
        Value steps = b_.load(b_.param(kPhaseSteps) + (set_base_ + first_pair), count,
                              Access{.hint = CacheHint::readonly, .align = std::min(16, count * 8)});
        sc = b_.sincos_turns(positions() * steps);
      } else {
        Value inv_freq = b_.load(b_.param(kInvFreq) + (set_base_ + first_pair), count,
                                 Access{.hint = CacheHint::readonly, .align = std::min(16, count * 4)});
        sc = b_.sincos(b_.cast(positions(), lang::Elem::f32) * inv_freq);
      }
      return {sc.second * factor, sc.first * factor};
    }
    Access a{.hint = CacheHint::readonly, .align = std::min(16, count * dtype_size(spec_.table_dtype))};
    auto row = [&](Value position) {
      Value at = position * map_.pairs + first_pair;
      return std::pair{b_.load(b_.param("cos") + at, count, a), b_.load(b_.param("sin") + at, count, a)};
    };
    auto t = row(token_.position);
    if (!mm) return t;
    auto h = row(token_.components[1]), w = row(token_.components[2]);
    return {b_.select(hw.first, h.first, b_.select(hw.second, w.first, t.first)),
            b_.select(hw.first, h.second, b_.select(hw.second, w.second, t.second))};
  }

  // Table ranges (first pair, count) this lane needs, one per distinct cos/sin vector.
  std::vector<std::pair<Value, int>> table_ranges() {
    if (!gptj_split()) return {{chunk_ * map_.width, map_.width}};
    const int half = map_.width / 2;
    Value first = chunk_ * half;
    return {{first, half}, {first + map_.pairs / 2, half}};
  }

  // Straight-line code over every head this thread owns: q heads g, g+G, ..., then k heads likewise.
  // Slots are taken `unroll` at a time: all their loads are issued before the first store, so they
  // are in flight together (across the q/k boundary too). Batches store different heads, so loading
  // one before storing the last is safe in place (a padding slot's reread of a tensor's last head may
  // race with that head's store, but its values are never stored or summed into a real head). A slot past a tensor's last head (when G
  // does not divide its head count) loads a valid head and skips its stores.
  void heads(const std::vector<Tensor>& tensors) {
    std::vector<Slot> slots;
    for (const Tensor& t : tensors)
      for (int i = 0; i * map_.groups < t.heads; ++i) slots.push_back({&t, i});
    const auto offsets = rotary_offsets();
    const CacheHint in_hint = config_.streaming ? CacheHint::stream
                              : spec_.in_place  ? CacheHint::normal
                                                : CacheHint::readonly;
    const CacheHint out_hint = config_.streaming ? CacheHint::stream : CacheHint::normal;
    const size_t unroll = size_t(std::max(1, config_.unroll));
    auto load_batch = [&](size_t first) {
      std::vector<Loaded> acc;
      for (size_t j = first; j < std::min(slots.size(), first + unroll); ++j) {
        const Tensor& t = *slots[j].t;
        Value head = group_ + int64_t(slots[j].iter) * map_.groups;
        Loaded a;
        a.t = &t;
        if ((slots[j].iter + 1) * map_.groups > t.heads) {
          a.valid = b_.ult(head, b_.i64(t.heads));
          head = b_.select(a.valid, head, b_.i64(t.heads - 1));
        }
        Value in_base = t.in_tok + head * t.in_head_stride;
        a.out_base = t.out_tok + head * t.out_head_stride;
        for (const Value& off : offsets)
          a.x.push_back(b_.load(t.in_ptr + (in_base + off), map_.width, {.hint = in_hint, .align = x_align(map_.width)}));
        for (const Value& off : pass_offsets_) {
          const Access pa{.hint = norm_ ? in_hint : CacheHint::readonly, .align = x_align(map_.pass_width)};
          // Copied bit for bit, or (another output dtype, or the norm) widened and rounded once.
          a.pass.push_back(norm_ || converts() ? b_.load(t.in_ptr + (in_base + off), map_.pass_width, pa)
                                               : b_.load_bits(t.in_ptr + (in_base + off), map_.pass_width, pa));
        }
        acc.push_back(std::move(a));
      }
      return acc;
    };
    // With the norm, the next batch's loads go out before this batch's reduction and stores, so the
    // program keeps memory busy while its sums cross lanes. H100 sweep, 16K tokens, d128 32/8: the
    // best config reached 97.2% of copy bandwidth pipelined (t128.w8.u2.cs) and 96.0% not
    // (t64.w8.u4.cs), where t128.w8.u2.cs itself stayed under 93.5% (docs/tune-h100.txt).
    const bool pipelined = norm_.has_value();
    std::vector<Loaded> next;
    for (size_t first = 0; first < slots.size(); first += unroll) {
      std::vector<Loaded> acc = next.empty() ? load_batch(first) : std::move(next);
      next.clear();
      if (pipelined && first + unroll < slots.size()) next = load_batch(first + unroll);
      if (norm_) normalise(acc);
      for (Loaded& a : acc) {
        // Padded lanes store no rotary part, but do store their share of the dims outside the rotary part.
        Value rotary_keep = a.valid;
        if (lane_valid_.valid()) rotary_keep = a.valid.valid() ? (a.valid & lane_valid_) : lane_valid_;
        auto store_rotary = [&] {
          auto y = rotate(a.x);
          for (size_t i = 0; i < offsets.size(); ++i)
            b_.store(a.t->out_ptr + (a.out_base + offsets[i]), y[i], {.hint = out_hint, .align = out_align(map_.width)});
        };
        auto store_pass = [&] {
          for (size_t j = 0; j < a.pass.size(); ++j) {
            Value p = a.t->out_ptr + (a.out_base + pass_offsets_[j]);
            const Access pa{.mask = pass_valid_[j], .align = out_align(map_.pass_width)};
            norm_ || converts() ? b_.store(p, a.pass[j], pa) : b_.store_bits(p, a.pass[j], pa);
          }
        };
        auto guarded = [&](const Value& cond, const std::function<void()>& body) {
          cond.valid() ? b_.if_then(cond, body) : body();
        };
        if (!lane_valid_.valid()) {  // RoPE's shape: one branch for the whole head
          guarded(a.valid, [&] {
            store_rotary();
            store_pass();
          });
        } else {
          guarded(rotary_keep, store_rotary);
          guarded(a.valid, store_pass);
        }
      }
    }
  }

  // Each loaded head scaled by 1 / sqrt(mean(x^2) + eps) and its weight, in place in `acc`. The sums
  // of squares of all the slots are reduced together, one reduction over each head's lanes.
  void normalise(std::vector<Loaded>& acc) {
    std::vector<Value> partial;
    for (const Loaded& a : acc) {
      Value s = a.x[0] * a.x[0];
      for (size_t i = 1; i < a.x.size(); ++i) s = b_.fma(a.x[i], a.x[i], s);
      Value sum = horizontal_sum(s);
      if (lane_valid_.valid()) sum = b_.select(lane_valid_, sum, b_.f32(0));
      for (size_t j = 0; j < a.pass.size(); ++j) {
        Value ps = horizontal_sum(a.pass[j] * a.pass[j]);
        Value ok = pass_valid_[j];
        sum = sum + (ok.valid() ? b_.select(ok, ps, b_.f32(0)) : ps);
      }
      partial.push_back(sum);
    }
    // The scalars gathered into one vector (element i: slot i), reduced element by element.
    Value all = partial[0];
    if (partial.size() > 1) {
      all = b_.splat(partial[0], int(partial.size()));
      for (size_t i = 1; i < partial.size(); ++i) {
        std::vector<int> pick(partial.size());
        for (size_t e = 0; e < partial.size(); ++e) pick[e] = int(e == i ? partial.size() : e);
        all = b_.shuffle(all, b_.splat(partial[i], int(partial.size())), pick);
      }
    }
    Value total = b_.reduce_sum(all, map_.lanes);
    const auto offsets = rotary_offsets();
    for (size_t i = 0; i < acc.size(); ++i) {
      Value mean = b_.extract(total, int(i)) / double(spec_.head_dim);
      Value r = 1.0 / b_.sqrt(mean + eps_);
      Loaded& a = acc[i];
      for (size_t k = 0; k < a.x.size(); ++k) a.x[k] = a.x[k] * r * weight(*a.t, offsets[k], map_.width);
      for (size_t j = 0; j < a.pass.size(); ++j)
        a.pass[j] = a.pass[j] * r * weight(*a.t, pass_offsets_[j], map_.pass_width);
    }
  }

  Value horizontal_sum(Value v) {
    Value s = b_.extract(v, 0);
    for (int e = 1; e < v.width(); ++e) s = s + b_.extract(v, e);
    return s;
  }

  // The dims outside the rotary part (before rotary_offset, after it + rotary_dim): lane l takes their
  // chunks l, l + L, ... Offsets past the end are
  // clamped; their stores are skipped (and the norm counts them as zero).
  void compute_pass_offsets() {
    for (int j = 0; j * map_.lanes < map_.pass_chunks; ++j) {
      Value idx = lane_ + int64_t(j) * map_.lanes;
      Value valid;
      if ((j + 1) * map_.lanes > map_.pass_chunks) {
        valid = b_.ult(idx, b_.i64(map_.pass_chunks));
        idx = b_.select(valid, idx, b_.i64(map_.pass_chunks - 1));
      }
      pass_valid_.push_back(valid);
      // Chunks before the rotary part, then those after it.
      Value at = idx * map_.pass_width;
      const int64_t before = spec_.rotary_offset / map_.pass_width;
      pass_offsets_.push_back(before == 0 ? at + int64_t(spec_.rotary_dim)
                                          : b_.select(b_.ult(idx, b_.i64(before)), at, at + int64_t(spec_.rotary_dim)));
    }
  }

  std::vector<Value> rotate(const std::vector<Value>& x) {
    const int w = map_.width;
    if (spec_.style == RopeStyle::neox) {
      auto [y1, y2] = rotate_pair(b_, x[0], x[1], cos_[0], sin_[0]);
      return {y1, y2};
    }
    if (gptj_split())
      return {rotate_interleaved(b_, x[0], cos_[0], sin_[0]), rotate_interleaved(b_, x[1], cos_[1], sin_[1])};
    Value out = rotate_interleaved(b_, b_.shuffle(x[0], x[1], iota(2 * w)), cos_[0], sin_[0]);
    return {b_.shuffle(out, iota(w)), b_.shuffle(out, iota(w, w))};
  }

  Builder& b_;
  const RopeSpec& spec_;
  const LaunchConfig& config_;
  const std::optional<NormParams>& norm_;
  Mapping map_;
  Token token_;
  Value factor_, set_base_;  // in-kernel angles: the attention factor and the first pair of the set
  Value batch_, seq_, lane_, chunk_, group_, lane_valid_, eps_;
  std::vector<Value> cos_, sin_;  // per table range
  std::vector<Value> pass_offsets_, pass_valid_;
};

}  // namespace

void emit_rotating_kernel(Builder& b, const RopeSpec& spec, const LaunchConfig& config,
                          const std::optional<NormParams>& norm) {
  RotatingKernel(b, spec, config, norm).emit();
}

}  // namespace ropejit::rope
