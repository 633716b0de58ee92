#include "ops/rope/params.hpp"

namespace ropejit::rope {

namespace {
const char* const kTensors[4] = {"q_in", "q_out", "k_in", "k_out"};
const char* const kStrides[4][3] = {{"q_in_stride_batch", "q_in_stride_seq", "q_in_stride_head"},
                                    {"q_out_stride_batch", "q_out_stride_seq", "q_out_stride_head"},
                                    {"k_in_stride_batch", "k_in_stride_seq", "k_in_stride_head"},
                                    {"k_out_stride_batch", "k_out_stride_seq", "k_out_stride_head"}};
const char* const kWeights[2] = {"q_weight", "k_weight"};
}  // namespace

const char* const kEpsParam = "eps";
const char* const kPhaseSteps = "phase_steps";
const char* const kCuSeqlens = "cu_seqlens";
const char* const kSeqStarts = "seq_starts";
const char* const kNumSeqs = "num_seqs";
const char* const kAttentionFactor = "attention_factor";
const char* const kInvFreq = "inv_freq";
const char* const kIdsStride = "ids_stride";
const char* const kSetFactors = "attention_factors";
const char* const kSetIndex = "set_index";
const char* const kNumSets = "num_sets";
const char* const kNumTokens = "num_tokens";
const char* tensor_param(int tensor, bool out) { return kTensors[2 * tensor + (out ? 1 : 0)]; }
const char* stride_param(int tensor, bool out, int dim) { return kStrides[2 * tensor + (out ? 1 : 0)][dim]; }
const char* weight_param(int tensor) { return kWeights[tensor]; }

std::vector<Arg> norm_params(DType weight_dtype) {
  return {Arg::pointer(kWeights[0], weight_dtype, true), Arg::pointer(kWeights[1], weight_dtype, true),
          Arg::float32(kEpsParam)};
}

void pack_norm_args(ArgPack& a, const void* q_weight, const void* k_weight, float eps) {
  a.add(kWeights[0], q_weight).add(kWeights[1], k_weight).add(kEpsParam, eps);
}

std::vector<Arg> rotation_params(const RopeSpec& spec) {
  // In place the kernel reads and writes through the out pointers only, so each is still noalias.
  const bool oop = !spec.in_place;
  const DType ids =
      spec.positions == PositionKind::ids_i64 || spec.positions == PositionKind::varlen_i64 ? DType::i64 : DType::i32;
  std::vector<Arg> p;
  for (int t = 0; t < 4; ++t) {
    const bool in = t % 2 == 0;
    p.push_back(Arg::pointer(kTensors[t], in ? spec.dtype : spec.output_dtype(), /*readonly=*/in, /*noalias=*/in ? oop : true));
  }
  if (spec.angles != AngleMode::table) {
    if (spec.angles == AngleMode::exact)
      p.push_back(Arg::pointer(kPhaseSteps, DType::i64, true, true));
    else
      p.push_back(Arg::pointer(kInvFreq, DType::f32, true, true));
    p.push_back(Arg::float32(kAttentionFactor));
    if (spec.frequency_sets) {
      p.push_back(Arg::pointer(kSetFactors, DType::f32, true, true));
      p.push_back(Arg::pointer(kSetIndex, DType::i32, true, true));
      p.push_back(Arg::int64(kNumSets));
    }
  } else {
    p.push_back(Arg::pointer("cos", spec.table_dtype, true, true));
    p.push_back(Arg::pointer("sin", spec.table_dtype, true, true));
  }
  p.push_back(Arg::pointer("position_ids", ids, true, true));
  if (spec.multimodal()) p.push_back(Arg::int64(kIdsStride));  // between the t, h and w ids: the tokens
  if (spec.varlen_depth) {
    p.push_back(Arg::pointer(kCuSeqlens, ids, true, true));
    p.push_back(Arg::pointer(kSeqStarts, ids, true, true));
    p.push_back(Arg::int64(kNumSeqs));
  }
  for (const char* n : {"position_offset", "seq_len", "max_position", kNumTokens}) p.push_back(Arg::int64(n));
  for (const auto& t : kStrides)
    for (const char* n : t) p.push_back(Arg::int64(n));
  return p;
}

void pack_rotation_args(ArgPack& a, const Plan& p) {
  const TensorView* views[4] = {&p.q, &p.q_out, &p.k, &p.k_out};
  for (int t = 0; t < 4; ++t) a.add(kTensors[t], static_cast<const void*>(views[t]->data));
  if (p.spec.angles == AngleMode::exact)
    a.add(kPhaseSteps, p.angles.frequencies.phase_steps).add(kAttentionFactor, p.angles.frequencies.attention_factor);
  else if (p.spec.angles == AngleMode::hf_compat)
    a.add(kInvFreq, p.angles.frequencies.inv_freq).add(kAttentionFactor, p.angles.frequencies.attention_factor);
  else
    a.add("cos", p.angles.table.cos).add("sin", p.angles.table.sin);
  if (p.spec.frequency_sets) {
    const Frequencies& f = p.angles.frequencies;
    a.add(kSetFactors, f.attention_factors).add(kSetIndex, f.set_index).add(kNumSets, f.sets);
  }
  a.add("position_ids", p.positions.ids);
  if (p.spec.multimodal()) a.add(kIdsStride, p.tokens);
  if (p.spec.varlen_depth)
    a.add(kCuSeqlens, p.positions.cu_seqlens).add(kSeqStarts, p.positions.starts).add(kNumSeqs, p.positions.num_seqs);
  a.add("position_offset", int64_t(p.positions.ids ? 0 : p.positions.offset));  // varlen: the start without starts
  a.add("seq_len", int64_t(p.q.seq)).add("max_position", p.max_position).add(kNumTokens, p.tokens);
  for (int t = 0; t < 4; ++t)
    a.add(kStrides[t][0], int64_t(views[t]->stride_batch))
        .add(kStrides[t][1], int64_t(views[t]->stride_seq))
        .add(kStrides[t][2], int64_t(views[t]->stride_head));
}

}  // namespace ropejit::rope
