#include "ops/rope/rotation.hpp"

#include "ops/rope/params.hpp"

namespace ropejit::rope {

using lang::Value;

void Token::leave_if(lang::Builder& b, Value cond) const { shared ? b.return_if(cond) : b.return_program_if(cond); }

Token token_and_position(lang::Builder& b, const RopeSpec& spec, int per_program, int threads) {
  Token t;
  Value pid = b.program_id();
  t.thread = b.thread_id();
  if (per_program > 1) {
    t.shared = true;
    pid = pid * int64_t(per_program) + b.udiv(t.thread, b.i64(threads));
    t.thread = b.urem(t.thread, b.i64(threads));
    t.leave_if(b, !b.ult(pid, b.param(kNumTokens)));
  }
  Value seq_len = b.param("seq_len");
  t.batch = b.udiv(pid, seq_len);
  t.seq = pid - t.batch * seq_len;
  t.sequence = t.batch;
  if (spec.varlen_depth) {
    // The sequence of this token: the last i <= num_seqs with cu_seqlens[i] <= token, by a branchless
    // binary search of varlen_depth steps (the same few values for every program: cached loads).
    Value cu = b.param(kCuSeqlens);
    Value n = b.param(kNumSeqs);
    Value lo = b.i64(0);
    for (int d = spec.varlen_depth - 1; d >= 0; --d) {
      Value cand = lo + b.i64(int64_t(1) << d);
      Value in = b.ult(cand, n + 1);
      Value first = b.cast(b.load(cu + cand, 1, {.mask = in, .hint = lang::CacheHint::readonly}), lang::Elem::i64);
      lo = b.select(in & (first <= pid), cand, lo);
    }
    // Tokens past the last sequence (lo == num_seqs) are left alone.
    t.leave_if(b, !b.ult(lo, n));
    Value begin = b.cast(b.load(cu + lo, 1, {.hint = lang::CacheHint::readonly}), lang::Elem::i64);
    Value start = spec.varlen_starts
                      ? b.cast(b.load(b.param(kSeqStarts) + lo, 1, {.hint = lang::CacheHint::readonly}), lang::Elem::i64)
                      : b.param("position_offset");
    t.position = start + (pid - begin);
    t.sequence = lo;
  } else if (spec.positions == PositionKind::offset) {
    t.position = b.param("position_offset") + t.seq;
  } else if (spec.multimodal()) {
    Value stride = b.param(kIdsStride);
    Value inside = b.boolean(true);
    for (int c = 0; c < 3; ++c) {
      t.components[size_t(c)] =
          b.cast(b.load(b.param("position_ids") + (pid + stride * int64_t(c)), 1, {.hint = lang::CacheHint::readonly}),
                 lang::Elem::i64);
      inside = inside & b.ult(t.components[size_t(c)], b.param("max_position"));
    }
    t.position = t.components[0];
    t.leave_if(b, !inside);  // any of the three outside the table: the token is left alone
    return t;
  } else {
    t.position = b.cast(b.load(b.param("position_ids") + pid), lang::Elem::i64);
  }
  // A position outside the table (negative ones too, as unsigned) leaves the token untouched:
  // nothing out of bounds is read or written.
  t.leave_if(b, !b.ult(t.position, b.param("max_position")));
  return t;
}

std::pair<Value, Value> rotate_pair(lang::Builder& b, Value x1, Value x2, Value c, Value s) {
  return {b.fma(x1, c, -(x2 * s)), b.fma(x2, c, x1 * s)};
}

std::vector<int> iota(int n, int start, int step) {
  std::vector<int> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v[size_t(i)] = start + i * step;
  return v;
}

Value rotate_interleaved(lang::Builder& b, Value v, Value c, Value s) {
  const int n = v.width() / 2;
  auto [y1, y2] = rotate_pair(b, b.shuffle(v, iota(n, 0, 2)), b.shuffle(v, iota(n, 1, 2)), c, s);
  std::vector<int> inter(size_t(2 * n));
  for (int i = 0; i < n; ++i) inter[size_t(2 * i)] = i, inter[size_t(2 * i + 1)] = n + i;
  return b.shuffle(y1, y2, inter);
}

}  // namespace ropejit::rope
