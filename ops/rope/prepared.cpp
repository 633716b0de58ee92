// A rotating op's call prepared once per layout and launched with new data: only the checks the data
// can change run per launch (make_plan shares them), then the packing and the launch.
#include <fmt/format.h>

#include "ops/rope/run.hpp"
#include "runtime/context.hpp"

namespace ropejit {

struct PreparedCall::State {
  rope::Plan plan;  // the first call's; each launch copies it and binds its own data
  bool with_k = false, out_of_place = false;
  Backend backend = Backend::cuda;
  int device = 0;
  rope::Ready ready;
  std::string spec_key;
  std::function<void(ArgPack&)> pack_extra;
};

struct PreparedAccess {
  static void set(PreparedCall& call, std::shared_ptr<const PreparedCall::State> state) { call.state_ = std::move(state); }
};

namespace rope {

PreparedCall make_prepared(const Plan& plan, const RopeOptions& options, const ConfigRules& rules, const Ready& ready,
                           std::function<void(ArgPack&)> pack_extra) {
  auto state = std::make_shared<PreparedCall::State>();
  state->plan = plan;
  state->with_k = plan.k.data != nullptr;
  state->out_of_place = options.q_out.has_value();
  state->backend = options.backend;
  state->device = options.device;
  state->ready = ready;
  state->spec_key = rules.spec_key();
  state->pack_extra = std::move(pack_extra);
  PreparedCall call;
  PreparedAccess::set(call, std::move(state));
  return call;
}

}  // namespace rope

void PreparedCall::launch(const RopeData& data, void* stream) const {
  if (!state_) throw Error("PreparedCall: empty (make one with prepare_rope or prepare_qk_norm_rope)");
  const State& s = *state_;
  rope::Plan p = s.plan;
  const int width = s.ready.config.vector_width;
  auto bind = [&](TensorView& v, void* ptr, const char* name, bool prepared) {
    if (!prepared) {
      if (ptr) throw Error(fmt::format("{}: given, but the call was prepared without it", name));
      return;
    }
    if (!ptr) throw Error(fmt::format("{}: null pointer", name));
    const auto align = uintptr_t(std::min(16, width * dtype_size(v.dtype)));
    if (reinterpret_cast<uintptr_t>(ptr) % align)
      throw Error(fmt::format("{}: not aligned to the {} bytes of the prepared kernel's accesses (vector width {}); "
                              "prepare a call for this data",
                              name, align, width));
    v.data = ptr;
  };
  bind(p.q, data.q, "q", true);
  bind(p.k, data.k, "k", s.with_k);
  bind(p.q_out, data.q_out, "q_out", s.out_of_place);
  bind(p.k_out, data.k_out, "k_out", s.out_of_place && s.with_k);
  if (!s.out_of_place) p.q_out = p.q, p.k_out = p.k;
  const Positions& pos = data.positions;
  rope::check_positions(pos, p.q, p.max_position, rope::angles_owner(p), s.backend);
  if (rope::position_kind(pos) != p.spec.positions || pos.components != p.positions.components ||
      (pos.starts != nullptr) != p.spec.varlen_starts ||
      (p.spec.varlen_depth && pos.num_seqs >= (int64_t(1) << p.spec.varlen_depth)))
    throw Error("positions: not of the kind the call was prepared with (offset, ids of one dtype, varlen with or "
                "without starts and at most as many sequences, or multimodal ids); prepare a call for them");
  rope::check_set_indices(p.angles, pos, p.q, s.backend);
  p.positions = pos;
  rope::check_overlaps(p, s.with_k, s.out_of_place);
  if (!s.ready.kernel) return;  // an empty step
  if (s.backend == Backend::cuda && runtime::ensure_context(s.device) != s.ready.ctx)
    throw Error("PreparedCall: the current CUDA context is not the one the call was prepared in");
  rope::launch_rotating(*s.ready.kernel, p, s.ready.config, s.backend, [&](ArgPack& a) { if (s.pack_extra) s.pack_extra(a); }, stream);
}

KernelConfig PreparedCall::config() const {
  if (!state_) throw Error("PreparedCall: empty");
  return state_->ready.config;
}

std::string PreparedCall::spec_key() const {
  if (!state_) throw Error("PreparedCall: empty");
  return state_->spec_key;
}

}  // namespace ropejit
