#include "ops/rope/tuning.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "ropejit/ropejit.hpp"
#include "runtime/files.hpp"

namespace ropejit {

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string record_key(const std::string& device, const std::string& spec, int64_t bucket) {
  return fmt::format("{}|{}|{}", device, spec, bucket);
}

struct Table {
  std::mutex mutex;
  bool loaded = false;
  std::map<std::string, rope::LaunchConfig> configs;
};

Table& table() {
  static Table t;
  return t;
}

nlohmann::json to_json(const TuningRecord& r) {
  return {{"device", r.device},
          {"spec", r.spec_key},
          {"token_bucket", r.token_bucket},
          {"threads", r.config.threads},
          {"vector_width", r.config.vector_width},
          {"unroll", r.config.unroll},
          {"streaming", r.config.streaming},
          {"gbps", r.gbps}};
}

}  // namespace

std::string KernelConfig::key() const {
  return fmt::format("t{}.w{}.u{}{}", threads, vector_width, unroll, streaming ? ".cs" : "");
}

int64_t token_bucket(int64_t tokens) {
  int64_t b = 1;
  while (b < tokens) b *= 2;
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
  if (doc.is_discarded() || !doc.contains("records") || !doc["records"].is_array())
    throw Error(fmt::format("tuning file {} is not valid ropejit tuning JSON", path));
  for (const auto& j : doc["records"]) {
    TuningRecord r;
    r.device = j.value("device", "");
    r.spec_key = j.value("spec", "");
    r.token_bucket = j.value("token_bucket", int64_t(0));
    r.config = KernelConfig{j.value("threads", 0), j.value("vector_width", 0), j.value("unroll", 0), j.value("streaming", 0)};
    r.gbps = j.value("gbps", 0.0);
    out.push_back(r);
  }
  return out;
}

void save_tuning(const std::vector<TuningRecord>& records, const std::string& path) {
  std::map<std::string, TuningRecord> merged;
  for (const auto& r : load_tuning(path)) merged[record_key(r.device, r.spec_key, r.token_bucket)] = r;
  for (const auto& r : records) merged[record_key(r.device, r.spec_key, r.token_bucket)] = r;
  nlohmann::json doc;
  doc["format"] = "ropejit-tuning-1";
  doc["records"] = nlohmann::json::array();
  for (const auto& [k, r] : merged) doc["records"].push_back(to_json(r));

  runtime::write_file_atomically(path, doc.dump(2) + "\n");
  std::lock_guard<std::mutex> lock(table().mutex);
  table().loaded = false;  // the next lookup reads the new file
}

namespace rope {

std::optional<LaunchConfig> tuned_config(const std::function<std::string()>& device, const RopeSpec& spec,
                                         int64_t tokens) {
  auto& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  if (!t.loaded) {
    t.configs.clear();
    try {
      for (const auto& r : load_tuning())
        t.configs[record_key(r.device, r.spec_key, r.token_bucket)] =
            LaunchConfig{r.config.threads, r.config.vector_width, r.config.unroll, r.config.streaming};
    } catch (const Error& e) {
      // A broken tuning file must not stop RoPE: the heuristic serves instead.
      std::fprintf(stderr, "ropejit: ignoring the tuning file: %s\n", e.what());
    }
    t.loaded = true;
  }
  if (t.configs.empty()) return std::nullopt;
  auto it = t.configs.find(record_key(device(), spec.key(), token_bucket(tokens)));
  if (it == t.configs.end()) return std::nullopt;
  return it->second;
}

}  // namespace rope
}  // namespace ropejit
