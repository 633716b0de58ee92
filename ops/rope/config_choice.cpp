#include "ops/rope/config_choice.hpp"

#include <fmt/format.h>

#include "jit/tuning.hpp"
#include "ropejit/aot.hpp"

namespace ropejit::rope {

double bytes_moved(const Plan& plan) {
  return double(plan.tokens) * (plan.spec.q_heads + plan.spec.k_heads) * plan.spec.head_dim *
         (dtype_size(plan.spec.dtype) + dtype_size(plan.spec.output_dtype()));
}

ConfigChoice choose_config(const Plan& plan, const RopeOptions& options, const ConfigRules& rules,
                           const std::function<std::string()>& device, int64_t l2_bytes) {
  const double bytes = bytes_moved(plan);
  const bool overridden =
      options.vector_width || options.threads || options.unroll || options.streaming >= 0 || options.tokens_per_program;
  if (!overridden) {
    if (auto tuned = jit::tuned_values(device, rules.op, rules.spec_key, plan.tokens)) {
      // A tuned config this call's memory (or this build) cannot use falls back to the heuristic.
      try {
        LaunchConfig c = kernel_config_from(*tuned);
        if (c.vector_width <= plan.width_cap) {
          rules.validate(c);
          return {c, "tuned"};
        }
      } catch (const Error&) {
      }
    }
    return {rules.heuristic(plan.width_cap, bytes, l2_bytes), "heuristic"};
  }
  LaunchConfig c = rules.heuristic(plan.width_cap, bytes, l2_bytes);
  if (options.vector_width) {
    if (options.vector_width > plan.width_cap)
      throw Error(fmt::format("vector_width {} needs every q/k pointer and stride aligned to {} bytes and table rows "
                              "to match; these tensors allow at most {}",
                              options.vector_width, int64_t(options.vector_width) * dtype_size(plan.spec.dtype), plan.width_cap));
    c = rules.heuristic(options.vector_width, bytes, l2_bytes);  // threads, unroll to suit the width
    c.vector_width = options.vector_width;
  }
  if (options.threads) c.threads = options.threads;
  if (options.unroll) c.unroll = options.unroll;
  if (options.streaming >= 0) c.streaming = options.streaming;
  if (options.tokens_per_program) c.tokens = options.tokens_per_program;
  rules.validate(c);
  return {c, "options"};
}

std::vector<LaunchConfig> candidate_configs(const Plan& plan, const ConfigRules& rules) {
  std::vector<LaunchConfig> out;
  for (int w = 1; w <= plan.width_cap; w *= 2)
    for (int t = 32; t <= 512; t *= 2)
      for (int u : {1, 2, 4, 8})
        for (int cs : {0, 1})
        for (int n : {1, 2, 4}) {
          // Streaming hints apply to 16-byte accesses only; several tokens per program where one
          // token's threads are few.
          if (cs && w * dtype_size(plan.spec.dtype) != 16) continue;
          if (n > 1 && (rules.norm || t > 256)) continue;
          LaunchConfig c{t, w, u, cs, n};
          try {
            rules.validate(c);
          } catch (const Error&) {
            continue;
          }
          const Mapping m = mapping(plan.spec, c, rules.norm);
          const int slots = (plan.spec.q_heads + m.groups - 1) / m.groups + (plan.spec.k_heads + m.groups - 1) / m.groups;
          if (u > slots && u != 1) continue;
          out.push_back(c);
        }
  return out;
}

}  // namespace ropejit::rope

namespace ropejit {

std::map<std::string, int64_t> config_values(const KernelConfig& c) {
  return {{"threads", c.threads},     {"vector_width", c.vector_width}, {"unroll", c.unroll},
          {"streaming", c.streaming}, {"tokens", c.tokens}};
}

KernelConfig kernel_config_from(const std::map<std::string, int64_t>& values) {
  auto get = [&](const char* name) {
    auto it = values.find(name);
    if (it == values.end()) throw Error(fmt::format("config: no value for \"{}\"", name));
    if (it->second < 0 || it->second > 1024) throw Error(fmt::format("config: \"{}\" = {} is out of range", name, it->second));
    return int(it->second);
  };
  // Tokens per program came later: a record without it has one.
  const int tokens = values.count("tokens") ? get("tokens") : 1;
  return KernelConfig{get("threads"), get("vector_width"), get("unroll"), get("streaming"), tokens};
}

}  // namespace ropejit
