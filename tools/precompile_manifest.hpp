// ropejit-precompile's manifest: {"specs": [{"op": "rope", "head_dim": 128, ...}, ...]}, every field
// checked. A function of its own so the fuzz target (fuzz/fuzz_precompile_manifest.cpp) reads
// manifests exactly as the tool does.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ropejit/ropejit.hpp"

namespace ropejit::tools {

// One spec of the manifest.
struct ManifestSpec {
  std::string op = "rope";
  RopeSpec rope;
  DType weight_dtype = DType::f32;
  bool one_plus_weight = false;
};

// One spec, every field checked: the required ones present, each of its JSON type, integers in range
// (never truncated or rounded), and no field ropejit does not know. Throws Error naming the field.
ManifestSpec spec_from_json(const nlohmann::json& j, size_t index);
// A whole manifest's text (`name` for messages). Throws Error on anything that is not a manifest.
std::vector<ManifestSpec> parse_manifest(const std::string& text, const std::string& name);

}  // namespace ropejit::tools
