#include "precompile_manifest.hpp"

#include <fmt/format.h>

#include <set>

namespace ropejit::tools {

namespace {

DType dtype_of(const std::string& s) {
  for (DType t : {DType::f32, DType::f16, DType::bf16})
    if (s == dtype_name(t)) return t;
  throw Error("unknown dtype '" + s + "' (f32, f16, bf16)");
}

PositionKind positions_of(const std::string& s) {
  if (s == "offset") return PositionKind::offset;
  if (s == "ids32") return PositionKind::ids_i32;
  if (s == "ids64") return PositionKind::ids_i64;
  throw Error("unknown positions '" + s + "' (offset, ids32, ids64)");
}

AngleMode angles_of(const std::string& s) {
  if (s == "table") return AngleMode::table;
  if (s == "exact") return AngleMode::exact;
  if (s == "hf_compat") return AngleMode::hf_compat;
  throw Error("unknown angles '" + s + "' (table, exact, hf_compat)");
}

}  // namespace

ManifestSpec spec_from_json(const nlohmann::json& j, size_t index) {
  auto bad = [&](const std::string& why) { return Error(fmt::format("spec {}: {}", index, why)); };
  if (!j.is_object()) throw bad("not a JSON object");
  static const std::set<std::string> known = {"op",        "head_dim", "rotary_dim", "style",     "dtype",
                                              "table_dtype", "q_heads", "k_heads",    "in_place", "positions",
                                              "weight_dtype", "one_plus_weight", "rotary_offset", "out_dtype",
                                              "angles", "mrope_section", "mrope_interleaved", "frequency_sets"};
  for (const auto& [k, v] : j.items())
    if (!known.count(k)) throw bad(fmt::format("unknown field \"{}\"", k));
  for (const char* f : {"head_dim", "q_heads", "k_heads", "dtype", "style"})
    if (!j.contains(f)) throw bad(fmt::format("missing field \"{}\"", f));
  auto integer = [&](const char* f, int64_t lo, int64_t hi) {
    const auto& v = j.at(f);
    if (!v.is_number_integer()) throw bad(fmt::format("\"{}\" must be an integer", f));
    int64_t x = v.get<int64_t>();
    if (x < lo || x > hi) throw bad(fmt::format("\"{}\" = {} is outside [{}, {}]", f, x, lo, hi));
    return int(x);
  };
  auto text = [&](const char* f, const char* dflt) -> std::string {
    if (!j.contains(f)) return dflt;
    if (!j.at(f).is_string()) throw bad(fmt::format("\"{}\" must be a string", f));
    return j.at(f).get<std::string>();
  };
  auto flag = [&](const char* f, bool dflt) {
    if (!j.contains(f)) return dflt;
    if (!j.at(f).is_boolean()) throw bad(fmt::format("\"{}\" must be true or false", f));
    return j.at(f).get<bool>();
  };
  ManifestSpec m;
  m.op = text("op", "rope");
  if (m.op != "rope" && m.op != "qk_norm_rope") throw bad("unknown op '" + m.op + "' (rope, qk_norm_rope)");
  RopeSpec& s = m.rope;
  s.head_dim = integer("head_dim", 2, 512);
  s.rotary_dim = j.contains("rotary_dim") ? integer("rotary_dim", 2, 512) : s.head_dim;  // less rotary_offset, below
  std::string style = text("style", "neox");
  if (style != "neox" && style != "gptj") throw bad("unknown style '" + style + "' (neox, gptj)");
  s.style = style == "neox" ? RopeStyle::neox : RopeStyle::gptj;
  s.dtype = dtype_of(text("dtype", "bf16"));
  s.table_dtype = dtype_of(text("table_dtype", "f32"));
  s.q_heads = integer("q_heads", 1, 4096);
  s.k_heads = integer("k_heads", 0, 4096);
  s.in_place = flag("in_place", true);
  s.positions = positions_of(text("positions", "offset"));
  if (j.contains("rotary_offset")) s.rotary_offset = integer("rotary_offset", 0, 510);
  if (j.contains("rotary_dim") == false) s.rotary_dim = s.head_dim - s.rotary_offset;
  if (j.contains("out_dtype")) s.out_dtype = dtype_of(text("out_dtype", "f32"));
  s.angles = angles_of(text("angles", "table"));
  s.frequency_sets = flag("frequency_sets", false);
  s.mrope_interleaved = flag("mrope_interleaved", false);
  if (j.contains("mrope_section")) {
    const auto& v = j.at("mrope_section");
    if (!v.is_array() || v.size() != 3) throw bad("\"mrope_section\" must be an array of 3 integers");
    for (size_t i = 0; i < 3; ++i) {
      if (!v[i].is_number_integer() || v[i].get<int64_t>() < 0 || v[i].get<int64_t>() > 256)
        throw bad(fmt::format("\"mrope_section\"[{}] must be an integer from 0 to 256", i));
      s.mrope_section[i] = int(v[i].get<int64_t>());
    }
  }
  m.weight_dtype = dtype_of(text("weight_dtype", "f32"));
  m.one_plus_weight = flag("one_plus_weight", false);
  if (m.op == "rope" && (j.contains("weight_dtype") || j.contains("one_plus_weight")))
    throw bad("\"weight_dtype\" and \"one_plus_weight\" belong to op qk_norm_rope");
  try {
    s.validate();
    if (m.op == "qk_norm_rope") QkNormRopeSpec{s, m.weight_dtype, m.one_plus_weight}.validate();
  } catch (const Error& e) {
    throw bad(e.what());
  }
  return m;
}

std::vector<ManifestSpec> parse_manifest(const std::string& text, const std::string& name) {
  auto doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("specs") || !doc["specs"].is_array())
    throw Error("manifest " + name + " must be a JSON object with a \"specs\" array");
  for (const auto& [k, v] : doc.items())
    if (k != "specs") throw Error(fmt::format("manifest {}: unknown field \"{}\"", name, k));
  std::vector<ManifestSpec> specs;
  size_t i = 0;
  for (const auto& j : doc["specs"]) specs.push_back(spec_from_json(j, i++));
  return specs;
}

}  // namespace ropejit::tools
