// The tuning file: best configs per (device, op, spec key, token bucket), written by ropejit-tune and
// read by the ops. Loaded once per process; save_tuning refreshes it. A file that is not valid is
// ignored (said once on stderr), and the heuristic serves.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

namespace ropejit::jit {

using ConfigValues = std::map<std::string, int64_t>;

// The tuned config for this call, if the tuning file has one. `device` and `spec_key` are asked for
// only when the tuning file has records.
std::optional<ConfigValues> tuned_values(const std::function<std::string()>& device, const char* op,
                                         const std::function<std::string()>& spec_key, int64_t tokens);

}  // namespace ropejit::jit
