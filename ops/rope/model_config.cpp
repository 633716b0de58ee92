// rope_from_config: a HuggingFace config.json -> ModelRope, read as transformers reads it (v5's
// rope_parameters and the older rope_scaling + rope_theta; GPT-NeoX, GPT-J and DeepSeek's own keys).
// Every field is type-checked before it is read; a wrong one is an Error naming it.
#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "ropejit/model.hpp"

namespace ropejit {

namespace {

using json = nlohmann::json;

constexpr int64_t max_dim = int64_t(1) << 16, max_heads = int64_t(1) << 20, max_positions = int64_t(1) << 40;

// A JSON object and its path in messages ("", "text_config.", "rope_scaling."), and optionally a
// wider object to take fields it lacks from (a multimodal config's top level). null is absent.
class Fields {
 public:
  Fields(const json& object, std::string path, const Fields* fallback = nullptr)
      : object_(&object), path_(std::move(path)), fallback_(fallback) {}

  bool has(const std::string& name) const { return find(name) != nullptr; }

  [[noreturn]] void fail(const std::string& name, const std::string& what,
                         ErrorKind kind = ErrorKind::invalid_argument) const {
    throw Error(fmt::format("config.json: {}{}: {}", where(name), name, what), kind);
  }

  std::optional<double> number(const std::string& name) const {
    const json* v = find(name);
    if (!v) return std::nullopt;
    if (!v->is_number()) fail(name, fmt::format("must be a number, got {}", v->type_name()));
    const double d = v->get<double>();
    if (!std::isfinite(d)) fail(name, "must be finite");
    return d;
  }

  // Integers may be written as floats without a fraction (128.0), not with one (128.5).
  std::optional<int64_t> integer(const std::string& name, int64_t lo, int64_t hi) const {
    const json* v = find(name);
    if (!v) return std::nullopt;
    auto n = as_integer(*v, lo, hi);
    if (!n) fail(name, fmt::format("must be an integer in [{}, {}], got {}", lo, hi, v->dump()));
    return n;
  }

  std::optional<bool> boolean(const std::string& name) const {
    const json* v = find(name);
    if (!v) return std::nullopt;
    if (!v->is_boolean()) fail(name, fmt::format("must be true or false, got {}", v->type_name()));
    return v->get<bool>();
  }

  std::optional<std::string> string(const std::string& name) const {
    const json* v = find(name);
    if (!v) return std::nullopt;
    if (!v->is_string()) fail(name, fmt::format("must be a string, got {}", v->type_name()));
    return v->get<std::string>();
  }

  std::optional<std::vector<double>> numbers(const std::string& name) const {
    const json* v = find(name);
    if (!v) return std::nullopt;
    if (!v->is_array()) fail(name, fmt::format("must be a list of numbers, got {}", v->type_name()));
    std::vector<double> out;
    for (size_t i = 0; i < v->size(); ++i) {
      const json& e = (*v)[i];
      if (!e.is_number() || !std::isfinite(e.get<double>())) fail(name, fmt::format("item {} must be a finite number", i));
      out.push_back(e.get<double>());
    }
    return out;
  }

  std::optional<std::vector<int64_t>> integers(const std::string& name, int64_t lo, int64_t hi) const {
    const json* v = find(name);
    if (!v) return std::nullopt;
    if (!v->is_array()) fail(name, fmt::format("must be a list of integers, got {}", v->type_name()));
    std::vector<int64_t> out;
    for (size_t i = 0; i < v->size(); ++i) {
      auto n = as_integer((*v)[i], lo, hi);
      if (!n) fail(name, fmt::format("item {} must be an integer in [{}, {}], got {}", i, lo, hi, (*v)[i].dump()));
      out.push_back(*n);
    }
    return out;
  }

  // A nested object, with this one's fallback's same-named object as its own fallback.
  const json* object(const std::string& name) const {
    const json* v = find(name);
    if (v && !v->is_object()) fail(name, fmt::format("must be an object, got {}", v->type_name()));
    return v;
  }
  std::string path_of(const std::string& name) const { return where(name) + name + "."; }

 private:
  static std::optional<int64_t> as_integer(const json& v, int64_t lo, int64_t hi) {
    int64_t n = 0;
    if (v.is_number_unsigned()) {
      if (v.get<uint64_t>() > uint64_t(hi)) return std::nullopt;
      n = int64_t(v.get<uint64_t>());
    } else if (v.is_number_integer()) {
      n = v.get<int64_t>();
    } else if (v.is_number_float()) {
      const double d = v.get<double>();
      if (!(std::floor(d) == d && d >= double(lo) && d <= double(hi))) return std::nullopt;  // also NaN, inf
      n = int64_t(d);
    } else {
      return std::nullopt;
    }
    if (n < lo || n > hi) return std::nullopt;
    return n;
  }
  const json* own(const std::string& name) const {
    auto it = object_->find(name);
    return it == object_->end() || it->is_null() ? nullptr : &*it;
  }
  const json* find(const std::string& name) const {
    if (const json* v = own(name)) return v;
    return fallback_ ? fallback_->find(name) : nullptr;
  }
  std::string where(const std::string& name) const {
    return !own(name) && fallback_ && fallback_->find(name) ? fallback_->where(name) : path_;
  }

  const json* object_;
  std::string path_;
  const Fields* fallback_;
};

std::string load_text(const std::string& path_or_json) {
  const size_t first = path_or_json.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && path_or_json[first] == '{') return path_or_json;
  std::ifstream in(path_or_json, std::ios::binary);
  if (!in) throw Error(ErrorKind::io, fmt::format("config.json: cannot open {}: {}", path_or_json, std::strerror(errno)));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw Error(ErrorKind::io, fmt::format("config.json: cannot read {}", path_or_json));
  return text.str();
}

template <typename T>
T required(const std::optional<T>& v, const Fields& f, const std::string& name, const std::string& why) {
  if (!v) f.fail(name, "missing field (" + why + ")");
  return *v;
}

// The scaling that rope_type names (or the old key `type`; rope_type wins), as transformers maps it.
RopeScaling scaling_of(const Fields& rope, const std::string& model_type) {
  std::string key = rope.has("rope_type") ? "rope_type" : "type";
  const std::string type = rope.string(key).value_or("default");
  if (type == "default" || type == "mrope") return RopeScaling::none;  // Qwen2-VL's mrope is default RoPE
  if (type == "linear") return RopeScaling::linear;
  if (type == "dynamic") return RopeScaling::dynamic;
  if (type == "yarn") return model_type == "phi3" && key == "type" ? RopeScaling::longrope : RopeScaling::yarn;
  if (type == "llama3") return RopeScaling::llama3;
  if (type == "longrope" || type == "su") return RopeScaling::longrope;  // Phi3Config renames "su"
  if (type == "proportional") rope.fail(key, "rope_type 'proportional' is not supported", ErrorKind::unsupported);
  rope.fail(key, fmt::format("unknown rope_type '{}' (known: default, linear, dynamic, yarn, llama3, longrope)", type));
}

// transformers applies interleaved pairs (GPT-J's rotate_every_two) for these model types. HF's
// DeepSeek-V3 (rope_interleave, default true) permutes the pairs to halves and rotates NeoX-style:
// the same attention scores as GPT-J style (q and k share the permutation).
RopeStyle style_of(const Fields& cfg, const std::string& model_type) {
  static const std::set<std::string> interleaved = {"gptj", "codegen", "cohere", "cohere2", "glm", "glm4", "deepseek_v2"};
  if (interleaved.count(model_type)) return RopeStyle::gptj;
  if (model_type == "deepseek_v3" || model_type == "kimi_k2")
    return cfg.boolean("rope_interleave").value_or(true) ? RopeStyle::gptj : RopeStyle::neox;
  return RopeStyle::neox;
}

// head_dim, rotary_dim and rotary_offset; `rope` is the rope_scaling / rope_parameters object.
void read_dims(const Fields& cfg, const Fields* rope, ModelRope& m) {
  if (cfg.has("qk_rope_head_dim")) {  // DeepSeek MLA: [nope | rope] per q/k head
    m.rotary_dim = *cfg.integer("qk_rope_head_dim", 1, max_dim);
    m.rotary_offset = required(cfg.integer("qk_nope_head_dim", 0, max_dim), cfg, "qk_nope_head_dim", "DeepSeek MLA");
    m.head_dim = m.rotary_offset + m.rotary_dim;
  } else {
    if (auto d = cfg.integer("head_dim", 1, max_dim)) {
      m.head_dim = *d;
    } else {
      const char* key = cfg.has("hidden_size") || !cfg.has("n_embd") ? "hidden_size" : "n_embd";
      const int64_t hidden = required(cfg.integer(key, 1, max_heads * max_dim), cfg, key, "or head_dim");
      m.head_dim = hidden / m.q_heads;  // transformers: hidden_size // num_attention_heads
      if (m.head_dim < 1 || m.head_dim > max_dim) cfg.fail(key, fmt::format("gives head_dim {}", m.head_dim));
    }
    if (auto r = cfg.integer("rotary_dim", 1, max_dim)) {  // GPT-J, CodeGen
      m.rotary_dim = *r;
    } else {
      auto fraction = [&](const Fields& f, const char* key) {
        auto p = f.number(key);
        if (p && !(*p > 0 && *p <= 1)) f.fail(key, fmt::format("must be in (0, 1], got {}", *p));
        return p;
      };
      auto p = fraction(cfg, "partial_rotary_factor");
      if (rope) {
        auto inner = fraction(*rope, "partial_rotary_factor");
        if (p && inner && *p != *inner) rope->fail("partial_rotary_factor", fmt::format("{} differs from the top-level {}", *inner, *p));
        if (inner) p = inner;
      }
      if (!p) p = fraction(cfg, "rotary_pct");  // GPT-NeoX
      m.rotary_dim = int64_t(double(m.head_dim) * p.value_or(1.0));  // transformers: int(head_dim * factor)
    }
  }
  const char* key = cfg.has("qk_rope_head_dim") ? "qk_rope_head_dim" : cfg.has("rotary_dim") ? "rotary_dim" : "partial_rotary_factor";
  if (m.rotary_dim < 2 || m.rotary_dim % 2) cfg.fail(key, fmt::format("gives rotary_dim {}: must be even and at least 2", m.rotary_dim));
  if (m.rotary_offset + m.rotary_dim > m.head_dim)
    cfg.fail(key, fmt::format("rotary part {} does not fit in head_dim {}", m.rotary_dim, m.head_dim));
}

double positive(const Fields& f, const std::string& name, double v) {
  if (!(v > 0)) f.fail(name, fmt::format("must be positive, got {}", v));
  return v;
}

void read_yarn(const Fields& rope, ModelRope& m) {
  m.factor = positive(rope, "factor", required(rope.number("factor"), rope, "factor", "yarn"));
  if (auto a = rope.number("attention_factor")) m.attention_factor = positive(rope, "attention_factor", *a);
  // transformers: `get("beta_fast") or 32`, so 0 means the default.
  auto beta = [&](const char* key, double fallback) {
    const double b = rope.number(key).value_or(0);
    if (b < 0) rope.fail(key, fmt::format("must not be negative, got {}", b));
    return b == 0 ? fallback : b;
  };
  m.beta_fast = beta("beta_fast", 32), m.beta_slow = beta("beta_slow", 1);
  m.mscale = rope.number("mscale").value_or(0), m.mscale_all_dim = rope.number("mscale_all_dim").value_or(0);
  m.truncate = rope.boolean("truncate").value_or(true);
  const double a = m.attention_factor.value_or(yarn_attention_factor(m.factor, m.mscale, m.mscale_all_dim));
  if (!(std::isfinite(a) && a > 0)) rope.fail(m.mscale != 0 ? "mscale_all_dim" : "factor", fmt::format("gives attention factor {}", a));
}

void read_llama3(const Fields& rope, ModelRope& m) {
  m.factor = positive(rope, "factor", required(rope.number("factor"), rope, "factor", "llama3"));
  m.low_freq_factor = positive(rope, "low_freq_factor", required(rope.number("low_freq_factor"), rope, "low_freq_factor", "llama3"));
  m.high_freq_factor = required(rope.number("high_freq_factor"), rope, "high_freq_factor", "llama3");
  if (!(m.high_freq_factor > m.low_freq_factor))
    rope.fail("high_freq_factor", fmt::format("{} must be above low_freq_factor {}", m.high_freq_factor, m.low_freq_factor));
}

void read_longrope(const Fields& cfg, const Fields& rope, ModelRope& m) {
  for (auto* key : {"short_factor", "long_factor"}) {
    auto v = required(rope.numbers(key), rope, key, "longrope");
    if (int64_t(v.size()) != m.rotary_dim / 2)
      rope.fail(key, fmt::format("has {} values, rotary_dim {} needs {}", v.size(), m.rotary_dim, m.rotary_dim / 2));
    for (size_t i = 0; i < v.size(); ++i)
      if (!(v[i] > 0)) rope.fail(key, fmt::format("item {} must be positive, got {}", i, v[i]));
    (std::string(key) == "short_factor" ? m.short_factor : m.long_factor) = std::move(v);
  }
  if (auto f = rope.number("factor")) {
    m.factor = positive(rope, "factor", *f);
  } else {
    if (!m.max_position_embeddings) cfg.fail("max_position_embeddings", "missing field (longrope without factor)");
    m.factor = double(m.max_position_embeddings) / double(m.original_max_position_embeddings);
  }
  if (auto a = rope.number("attention_factor")) m.attention_factor = positive(rope, "attention_factor", *a);
  const double a = m.attention_factor.value_or(longrope_attention_factor(m.factor, m.original_max_position_embeddings));
  if (!std::isfinite(a)) cfg.fail("original_max_position_embeddings", fmt::format("gives attention factor {}", a));
}

void read_mrope(const Fields& rope, ModelRope& m) {
  auto sections = rope.integers("mrope_section", 0, max_dim);
  m.mrope_interleaved = rope.boolean("mrope_interleaved").value_or(false);
  if (!sections) {
    if (m.mrope_interleaved) rope.fail("mrope_interleaved", "needs mrope_section");
    return;
  }
  const int64_t half = m.rotary_dim / 2;
  if (sections->size() != 3) rope.fail("mrope_section", fmt::format("needs 3 sections (t, h, w), got {}", sections->size()));
  const int64_t t = (*sections)[0], h = (*sections)[1], w = (*sections)[2];
  if (t + h + w != half) rope.fail("mrope_section", fmt::format("adds up to {}, rotary_dim / 2 is {}", t + h + w, half));
  // Interleaved: h takes pairs 1, 4, .. < 3h and w 2, 5, .. < 3w; all must lie below rotary_dim / 2.
  if (m.mrope_interleaved && (3 * h > half + 1 || 3 * w > half))
    rope.fail("mrope_section", fmt::format("interleaved sections {}, {} do not fit in {} pairs", h, w, half));
  m.mrope_section = std::move(*sections);
}

ModelRope read_config(const json& root_json) {
  if (!root_json.is_object()) throw Error(fmt::format("config.json: must be a JSON object, got {}", root_json.type_name()));
  const Fields root(root_json, "");
  const json* text_json = root.object("text_config");
  const Fields cfg = text_json ? Fields(*text_json, "text_config.", &root) : root;
  const std::string model_type = cfg.string("model_type").value_or("");

  // rope_scaling (when not empty) wins over rope_parameters, as transformers' convert_rope_params_to_dict.
  const json* rope_json = nullptr;
  std::string rope_key;
  for (const char* key : {"rope_scaling", "rope_parameters"}) {
    const json* j = cfg.object(key);
    if (j && !j->empty() && !rope_json) rope_json = j, rope_key = key;
  }
  std::optional<Fields> rope;
  if (rope_json) {
    rope.emplace(*rope_json, cfg.path_of(rope_key));
    bool per_layer = true;
    for (const auto& [k, v] : rope_json->items()) per_layer = per_layer && v.is_object();
    if (per_layer)
      throw Error(ErrorKind::unsupported, fmt::format("config.json: {}: per-layer-type RoPE parameters are not supported",
                                                      rope_key));
  }
  static const json empty = json::object();
  const Fields& rp = rope ? *rope : Fields(empty, "rope_scaling.");

  ModelRope m;
  const char* heads_key = cfg.has("num_attention_heads") || !cfg.has("n_head") ? "num_attention_heads" : "n_head";
  m.q_heads = required(cfg.integer(heads_key, 1, max_heads), cfg, heads_key, "query heads");
  m.kv_heads = cfg.integer("num_key_value_heads", 1, max_heads).value_or(m.q_heads);
  if (m.q_heads % m.kv_heads) cfg.fail("num_key_value_heads", fmt::format("{} does not divide num_attention_heads {}", m.kv_heads, m.q_heads));
  read_dims(cfg, rope ? &*rope : nullptr, m);
  m.style = style_of(cfg, model_type);

  // rope_theta: inside the rope object first, then the top level, then GPT-NeoX's name, then 10000.
  const Fields& theta_at = rp.has("rope_theta") ? rp : cfg;
  const char* theta_key = theta_at.has("rope_theta") || !cfg.has("rotary_emb_base") ? "rope_theta" : "rotary_emb_base";
  m.theta = theta_at.number(theta_key).value_or(10000.0);
  if (!(m.theta > 1)) theta_at.fail(theta_key, fmt::format("must be greater than 1, got {}", m.theta));

  const char* max_key = cfg.has("max_position_embeddings") || !cfg.has("n_positions") ? "max_position_embeddings" : "n_positions";
  m.max_position_embeddings = cfg.integer(max_key, 1, max_positions).value_or(0);
  m.scaling = scaling_of(rp, model_type);
  if (m.scaling == RopeScaling::yarn || m.scaling == RopeScaling::llama3 || m.scaling == RopeScaling::longrope) {
    // transformers v5: a top-level original_max_position_embeddings wins (Phi-3), then the rope
    // object's, then max_position_embeddings.
    const Fields& at = cfg.has("original_max_position_embeddings") ? cfg : rp;
    auto orig = at.integer("original_max_position_embeddings", 1, max_positions);
    if (!orig && !m.max_position_embeddings) rp.fail("original_max_position_embeddings", "missing field (or max_position_embeddings)");
    m.original_max_position_embeddings = orig.value_or(m.max_position_embeddings);
  }
  switch (m.scaling) {
    case RopeScaling::none: break;
    case RopeScaling::linear:
    case RopeScaling::dynamic:
      m.factor = positive(rp, "factor", required(rp.number("factor"), rp, "factor", rope_scaling_name(m.scaling)));
      if (m.scaling == RopeScaling::dynamic) {
        if (!m.max_position_embeddings) cfg.fail("max_position_embeddings", "missing field (dynamic)");
        if (m.rotary_dim <= 2) rp.fail("rope_type", "dynamic needs rotary_dim above 2");
      }
      break;
    case RopeScaling::yarn: read_yarn(rp, m); break;
    case RopeScaling::llama3: read_llama3(rp, m); break;
    case RopeScaling::longrope: read_longrope(cfg, rp, m); break;
  }
  read_mrope(rp, m);
  return m;
}

}  // namespace

ModelRope rope_from_config(const std::string& path_or_json) {
  try {
    const json j = json::parse(load_text(path_or_json), nullptr, false);
    if (j.is_discarded()) throw Error("config.json: not valid JSON");
    return read_config(j);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {  // the library's rule: only Error leaves it
    throw Error(ErrorKind::internal, fmt::format("config.json: {}", e.what()));
  }
}

}  // namespace ropejit
