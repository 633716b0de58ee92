// What every rotating kernel body (RoPE, QK-norm + RoPE) shares, in the kernel language: the token
// and its position, and the arithmetic of one rotation. (Built into libropejit only.)
#pragma once

#include <array>
#include <vector>

#include "ops/rope/spec.hpp"
#include "ropejit/language.hpp"

namespace ropejit::rope {

// Per-token facts of a rotating kernel: which token, where it sits, its position, and this thread
// among the token's threads.
struct Token {
  lang::Value batch, seq, position;
  lang::Value sequence;  // the batch row, or (varlen) the packed sequence holding the token
  std::array<lang::Value, 3> components;  // multimodal: the t, h and w positions (position is t's)
  lang::Value thread;    // 0 .. threads per token - 1
  bool shared = false;   // the program holds several tokens: a token leaves by its threads' returns
  // Leaves the token when cond holds (the whole program when it holds one token).
  void leave_if(lang::Builder& b, lang::Value cond) const;
};
// This thread's token (program p holds tokens p x `per_program` ..., `threads` threads each) and its
// position; a token past the last, or at a position outside the table, is left (nothing read or
// written).
Token token_and_position(lang::Builder& b, const RopeSpec& spec, int per_program = 1, int threads = 0);

// (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin) in f32, one fma each, rounded once on store.
std::pair<lang::Value, lang::Value> rotate_pair(lang::Builder& b, lang::Value x1, lang::Value x2, lang::Value c,
                                                lang::Value s);
// Interleaved pairs of one vector: evens and odds, rotated, interleaved again.
lang::Value rotate_interleaved(lang::Builder& b, lang::Value v, lang::Value c, lang::Value s);
std::vector<int> iota(int n, int start = 0, int step = 1);

}  // namespace ropejit::rope
