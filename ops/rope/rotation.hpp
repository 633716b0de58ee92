// What every rotating kernel body (RoPE, QK-norm + RoPE) shares, in the kernel language: the token
// and its position, and the arithmetic of one rotation. (Built into libropejit only.)
#pragma once

#include <array>
#include <vector>

#include "ops/rope/spec.hpp"
#include "ropejit/language.hpp"

namespace ropejit::rope {

// Per-program facts of a rotating kernel: which token, where it sits, its position.
struct Token {
  lang::Value batch, seq, position;
  lang::Value sequence;  // the batch row, or (varlen) the packed sequence holding the token
  std::array<lang::Value, 3> components;  // multimodal: the t, h and w positions (position is t's)
};
// The token of this program (one per program) and its position; a position outside the table
// leaves the program (nothing read or written, as a whole program).
Token token_and_position(lang::Builder& b, const RopeSpec& spec);

// (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin) in f32, one fma each, rounded once on store.
std::pair<lang::Value, lang::Value> rotate_pair(lang::Builder& b, lang::Value x1, lang::Value x2, lang::Value c,
                                                lang::Value s);
// Interleaved pairs of one vector: evens and odds, rotated, interleaved again.
lang::Value rotate_interleaved(lang::Builder& b, lang::Value v, lang::Value c, lang::Value s);
std::vector<int> iota(int n, int start = 0, int step = 1);

}  // namespace ropejit::rope
