// The parameters every rotating kernel (RoPE, QK-norm + RoPE) starts with: q, k, the table and the
// positions. Written once: they drive the code, the host entry and the launch.
#pragma once

#include <vector>

#include "ops/rope/plan.hpp"
#include "ropejit/language.hpp"

namespace ropejit::rope {

std::vector<Arg> rotation_params(const RopeSpec& spec);
// The values of those parameters for a planned call, in their order (ArgPack::add checks each name).
void pack_rotation_args(ArgPack& args, const Plan& plan);

// The norm's parameters, after the rotation's (QK-norm + RoPE), and their values.
std::vector<Arg> norm_params(DType weight_dtype);
void pack_norm_args(ArgPack& args, const void* q_weight, const void* k_weight, float eps);

// Names, for the kernel bodies. Tensor 0: q, 1: k; `out` false: the input; dim 0..2: batch, seq, head.
const char* tensor_param(int tensor, bool out);
const char* stride_param(int tensor, bool out, int dim);
const char* weight_param(int tensor);
extern const char* const kEpsParam;
extern const char* const kPhaseSteps, *const kInvFreq, *const kAttentionFactor;  // in-kernel angles
extern const char* const kSetFactors, *const kSetIndex, *const kNumSets;  // a frequency set per sequence
extern const char* const kNumTokens;  // batch x seq: a program of several tokens may pass the last
extern const char* const kIdsStride;  // multimodal positions: t, h and w ids are this far apart
extern const char* const kCuSeqlens, *const kSeqStarts, *const kNumSeqs;  // varlen positions

}  // namespace ropejit::rope
