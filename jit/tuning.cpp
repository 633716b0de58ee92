#include "jit/tuning.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <nlohmann/json.hpp>

#include "ropejit/aot.hpp"
#include "runtime/files.hpp"

namespace ropejit {

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string record_key(const std::string& device, const std::string& op, const std::string& spec, int64_t bucket) {
  return fmt::format("{}|{}|{}|{}", device, op, spec, bucket);
}

struct Table {
  std::mutex mutex;
  bool loaded = false;
  std::map<std::string, jit::ConfigValues> configs;
};

Table& table() {
  static Table t;
  return t;
}

nlohmann::json to_json(const TuningRecord& r) {
  nlohmann::json config = nlohmann::json::object();
  for (const auto& [k, v] : r.config) config[k] = v;
  return {{"device", r.device}, {"op", r.op},       {"spec", r.spec_key},
          {"token_bucket", r.token_bucket}, {"config", config}, {"gbps", r.gbps}};
}

// One record, every field checked; format 1 (RoPE only) kept its config values at the top level.
TuningRecord from_json(const nlohmann::json& j, size_t index, int format, const std::string& path) {
  auto bad = [&](const std::string& why) {
    return Error(ErrorKind::invalid_argument, fmt::format("tuning file {}: record {}: {}", path, index, why));
  };
  if (!j.is_object()) throw bad("not an object");
  auto text = [&](const char* name) {
    if (!j.contains(name) || !j[name].is_string()) throw bad(fmt::format("\"{}\" is missing or not a string", name));
    return j[name].get<std::string>();
  };
  auto integer = [&](const nlohmann::json& o, const std::string& name) {
    if (!o.contains(name) || !o[name].is_number_integer())
      throw bad(fmt::format("\"{}\" is missing or not an integer", name));
    return o[name].get<int64_t>();
  };
  TuningRecord r;
  r.device = text("device");
  r.spec_key = text("spec");
  r.token_bucket = integer(j, "token_bucket");
  if (r.token_bucket < 1) throw bad("\"token_bucket\" must be positive");
  if (format == 1) {
    r.op = "rope";
    for (const char* name : {"threads", "vector_width", "unroll", "streaming"}) r.config[name] = integer(j, name);
  } else {
    r.op = text("op");
    if (!j.contains("config") || !j["config"].is_object()) throw bad("\"config\" is missing or not an object");
    for (const auto& [k, v] : j["config"].items()) r.config[k] = integer(j["config"], k);
  }
  if (j.contains("gbps")) {
    if (!j["gbps"].is_number()) throw bad("\"gbps\" is not a number");
    r.gbps = j["gbps"].get<double>();
  }
  return r;
}

}  // namespace

int64_t token_bucket(int64_t tokens) {
  int64_t b = 1;
  while (b < tokens && b < (int64_t(1) << 62)) b *= 2;
  return b;
}

std::string tuning_file_path() {
  if (auto f = env("ROPEJIT_TUNING_FILE"); !f.empty()) return f;
  return runtime::cache_directory() + "/tuning.json";
}

std::vector<TuningRecord> load_tuning(const std::string& path) {
  std::vector<TuningRecord> out;
  auto text = runtime::read_file(path);
  if (!text) return out;  // no file: nothing tuned yet
  auto doc = nlohmann::json::parse(*text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    throw Error(ErrorKind::invalid_argument, fmt::format("tuning file {} is not a JSON object", path));
  int format = 0;
  if (doc.contains("format") && doc["format"] == "ropejit-tuning-1") format = 1;
  if (doc.contains("format") && doc["format"] == "ropejit-tuning-2") format = 2;
  if (!format)
    throw Error(ErrorKind::invalid_argument,
                fmt::format("tuning file {}: \"format\" is not \"ropejit-tuning-2\" (or -1)", path));
  if (!doc.contains("records") || !doc["records"].is_array())
    throw Error(ErrorKind::invalid_argument, fmt::format("tuning file {}: no \"records\" array", path));
  size_t i = 0;
  for (const auto& j : doc["records"]) out.push_back(from_json(j, i++, format, path));
  return out;
}

void save_tuning(const std::vector<TuningRecord>& records, const std::string& path) {
  // Read, merge and write under one lock: concurrent savers (threads or processes, the tuner's
  // included) each keep their records instead of the last writer's file winning.
  runtime::FileLock lock(path + ".lock");
  std::map<std::string, TuningRecord> merged;
  for (const auto& r : load_tuning(path)) merged[record_key(r.device, r.op, r.spec_key, r.token_bucket)] = r;
  for (const auto& r : records) merged[record_key(r.device, r.op, r.spec_key, r.token_bucket)] = r;
  nlohmann::json doc;
  doc["format"] = "ropejit-tuning-2";
  doc["records"] = nlohmann::json::array();
  for (const auto& [k, r] : merged) doc["records"].push_back(to_json(r));
  // Strings that are not UTF-8 (a device name, say) make dump() throw: said as our error.
  std::string text;
  try {
    text = doc.dump(2) + "\n";
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorKind::invalid_argument, fmt::format("tuning records cannot be written as JSON: {}", e.what()));
  }
  runtime::write_file_atomically(path, text);
  std::lock_guard<std::mutex> table_lock(table().mutex);
  table().loaded = false;  // the next lookup reads the new file
}

namespace jit {

std::optional<ConfigValues> tuned_values(const std::function<std::string()>& device, const char* op,
                                         const std::function<std::string()>& spec_key, int64_t tokens) {
  auto& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  if (!t.loaded) {
    t.configs.clear();
    try {
      for (const auto& r : load_tuning())
        t.configs[record_key(r.device, r.op, r.spec_key, r.token_bucket)] = r.config;
    } catch (const Error& e) {
      // A broken tuning file must not stop the ops: the heuristic serves instead.
      t.configs.clear();
      std::fprintf(stderr, "ropejit: ignoring the tuning file: %s\n", e.what());
    }
    t.loaded = true;
  }
  if (t.configs.empty()) return std::nullopt;
  auto it = t.configs.find(record_key(device(), op, spec_key(), token_bucket(tokens)));
  if (it == t.configs.end()) return std::nullopt;
  return it->second;
}

}  // namespace jit
}  // namespace ropejit
