#include "jit/bundle.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "ropejit/aot.hpp"
#include "runtime/files.hpp"

namespace ropejit {

namespace {

struct Registry {
  std::mutex mutex;
  std::map<std::string, jit::BundledKernel> kernels;
};
Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

namespace jit {
std::optional<BundledKernel> find_bundled(const std::string& key) {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto it = r.kernels.find(key);
  if (it == r.kernels.end()) return std::nullopt;
  return it->second;
}
}  // namespace jit

void load_bundle(const std::string& dir) {
  auto manifest_path = (std::filesystem::path(dir) / "manifest.json").string();
  auto text = runtime::read_file(manifest_path);
  if (!text) throw Error(ErrorKind::io, fmt::format("bundle {}: no manifest.json", dir));
  auto doc = nlohmann::json::parse(*text, nullptr, false);
  auto bad = [&](const std::string& why) {
    return Error(ErrorKind::invalid_argument, fmt::format("bundle {}: manifest.json is not a ropejit bundle manifest: {}", dir, why));
  };
  if (doc.is_discarded()) throw bad("not JSON");
  if (doc.is_object() && doc.contains("format") && doc["format"] == "ropejit-bundle-1")
    throw bad("format 1 (no checksums) is no longer read: write the bundle again with ropejit-precompile --bundle");
  if (!doc.is_object() || !doc.contains("format") || doc["format"] != "ropejit-bundle-2") throw bad("no \"format\": \"ropejit-bundle-2\"");
  if (!doc.contains("kernels") || !doc["kernels"].is_array()) throw bad("no \"kernels\" array");
  std::map<std::string, jit::BundledKernel> loaded;
  size_t i = 0;
  for (const auto& k : doc["kernels"]) {
    auto text_field = [&](const char* name, bool required) -> std::string {
      if (!k.contains(name) || k[name].is_null()) {
        if (required) throw bad(fmt::format("kernel {} has no \"{}\"", i, name));
        return "";
      }
      if (!k[name].is_string()) throw bad(fmt::format("kernel {}: \"{}\" is not a string", i, name));
      return k[name].get<std::string>();
    };
    if (!k.is_object()) throw bad(fmt::format("kernel {} is not an object", i));
    jit::BundledKernel b;
    b.symbol = text_field("symbol", true);
    auto int_field = [&](const char* name, int64_t lo, int64_t hi) {
      if (!k.contains(name) || !k[name].is_number_integer() || k[name].get<int64_t>() < lo || k[name].get<int64_t>() > hi)
        throw bad(fmt::format("kernel {}: \"{}\" is not a whole number in [{}, {}]", i, name, lo, hi));
      return k[name].get<int64_t>();
    };
    // A file the manifest names, in the bundle directory, with the CRC-32 the manifest gives for it.
    auto read = [&](const char* field, bool required) -> std::string {
      const std::string name = text_field(field, required);
      if (name.empty()) return "";
      if (name.find('/') != std::string::npos || name == "..")
        throw bad(fmt::format("kernel {}: file name {} leaves the bundle directory", i, name));
      auto bytes = runtime::read_file((std::filesystem::path(dir) / name).string());
      if (!bytes) throw Error(ErrorKind::io, fmt::format("bundle {}: missing file {}", dir, name));
      const std::string crc_field = std::string(field) + "_crc32";
      if (runtime::crc32_of(*bytes) != uint32_t(int_field(crc_field.c_str(), 0, 0xffffffffll)))
        throw Error(ErrorKind::io, fmt::format("bundle {}: {} does not match its checksum (corrupted or replaced)", dir, name));
      return *bytes;
    };
    const std::string key = text_field("key", true);
    int_field("sm", 10, 1000);
    int_field("ptx_isa", 10, 1000);
    b.ptx = read("ptx", true);
    b.cubin = read("cubin", false);
    if (b.symbol.empty() || b.ptx.empty() || key.empty()) throw bad(fmt::format("kernel {} lacks its key, symbol or PTX", i));
    loaded[key] = std::move(b);
    ++i;
  }
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  for (auto& [key, b] : loaded) r.kernels[key] = std::move(b);
}

void register_embedded_kernels(const EmbeddedKernel* kernels, unsigned long count) {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  for (unsigned long i = 0; i < count; ++i) {
    const auto& k = kernels[i];
    r.kernels[k.key] = jit::BundledKernel{k.symbol, std::string(reinterpret_cast<const char*>(k.ptx), k.ptx_size),
                                           std::string(reinterpret_cast<const char*>(k.cubin), k.cubin_size)};
  }
}

size_t bundled_kernel_count() {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  return r.kernels.size();
}

void write_bundle(const std::string& dir, const std::vector<PrecompiledKernel>& kernels) {
  nlohmann::json doc;
  doc["format"] = "ropejit-bundle-2";
  doc["kernels"] = nlohmann::json::array();
  for (const auto& k : kernels) {
    std::string stem = runtime::key_file_name(k.key);
    runtime::write_file_atomically((std::filesystem::path(dir) / (stem + ".ptx")).string(), k.ptx);
    if (!k.cubin.empty()) runtime::write_file_atomically((std::filesystem::path(dir) / (stem + ".cubin")).string(), k.cubin);
    nlohmann::json entry = {{"key", k.key},           {"symbol", k.symbol},
                            {"sm", k.sm},             {"ptx_isa", k.ptx_isa},
                            {"ptx", stem + ".ptx"},   {"ptx_crc32", runtime::crc32_of(k.ptx)},
                            {"cubin", k.cubin.empty() ? "" : stem + ".cubin"}};
    if (!k.cubin.empty()) entry["cubin_crc32"] = runtime::crc32_of(k.cubin);
    doc["kernels"].push_back(std::move(entry));
  }
  // The manifest last: a reader that finds it finds every file it names.
  std::string text;
  try {
    text = doc.dump(2) + "\n";
  } catch (const nlohmann::json::exception& e) {  // a key that is not UTF-8
    throw Error(ErrorKind::invalid_argument, fmt::format("bundle {}: the manifest cannot be written: {}", dir, e.what()));
  }
  runtime::write_file_atomically((std::filesystem::path(dir) / "manifest.json").string(), text);
}

namespace {
// A C++ string literal's contents: quotes, backslashes and anything not printable escaped.
std::string cpp_escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') out += '\\', out += char(c);
    else if (c < 32 || c >= 127) out += fmt::format("\\{:03o}", unsigned(c));
    else out += char(c);
  }
  return out;
}
}  // namespace

std::string embed_bundle_source(const std::vector<PrecompiledKernel>& kernels, const std::string& name) {
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
      throw Error(fmt::format("embedded bundle name '{}' is not a C identifier (letters, digits, '_')", name));
  if (name.empty() || (name[0] >= '0' && name[0] <= '9'))
    throw Error(fmt::format("embedded bundle name '{}' is not a C identifier", name));
  std::string s = fmt::format(
      "// Generated by ropejit-precompile: {} kernel(s). Compile into a program linked with libropejit or\n"
      "// libropejit_runtime; the kernels are registered before main() runs.\n"
      "#include <ropejit/aot.hpp>\n\nnamespace {{\n",
      kernels.size());
  auto bytes = [&](const std::string& var, const std::string& data) {
    s += fmt::format("const unsigned char {}[] = {{", var);
    for (size_t i = 0; i < data.size(); ++i)
      s += fmt::format("{}{}", i == 0 ? "\n  " : i % 24 ? "," : ",\n  ", unsigned(static_cast<unsigned char>(data[i])));
    if (data.empty()) s += "0";
    s += "};\n";
  };
  for (size_t i = 0; i < kernels.size(); ++i) {
    bytes(fmt::format("ptx{}", i), kernels[i].ptx);
    bytes(fmt::format("cubin{}", i), kernels[i].cubin);
  }
  s += "const ropejit::EmbeddedKernel kernels[] = {\n";
  for (size_t i = 0; i < kernels.size(); ++i)
    s += fmt::format("  {{\"{}\", \"{}\", {}, {}, ptx{}, {}, cubin{}, {}}},\n", cpp_escape(kernels[i].key), cpp_escape(kernels[i].symbol),
                     kernels[i].sm, kernels[i].ptx_isa, i, kernels[i].ptx.size(), i, kernels[i].cubin.size());
  s += fmt::format(
      "}};\nstruct Registrar {{\n  Registrar() {{ ropejit::register_embedded_kernels(kernels, {}); }}\n}} registrar;\n"
      "}}  // namespace\n\n// Referencing this keeps the bundle linked in from a static library.\n"
      "extern \"C\" unsigned long ropejit_bundle_{}() {{ return {}; }}\n",
      kernels.size(), name, kernels.size());
  return s;
}

}  // namespace ropejit
