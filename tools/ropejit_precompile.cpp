// ropejit-precompile: specs in, kernels out, so a deployment needs neither code generation nor the
// driver's PTX JIT at start (and, with libropejit_runtime and a bundle, no LLVM at all).
//
//   ropejit-precompile --q-heads 32 --k-heads 8 --head-dim 128 --sm 80,90 --bundle out/
//   ropejit-precompile --manifest specs.json --embed kernels.cpp --name llama
//   ropejit-precompile --manifest specs.json --cache
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "ropejit/ropejit.hpp"
#include "precompile_manifest.hpp"

using namespace ropejit;
using ropejit::tools::ManifestSpec;
using ropejit::tools::spec_from_json;

namespace {

std::string find_ptxas(const std::string& given) {
  if (!given.empty()) return given;
  for (const char* p : {"/usr/local/cuda/bin/ptxas"})
    if (std::filesystem::exists(p)) return p;
  if (FILE* f = popen("command -v ptxas 2>/dev/null", "r")) {
    char buf[4096] = {};
    std::string path = fgets(buf, sizeof buf, f) ? buf : "";
    pclose(f);
    while (!path.empty() && (path.back() == '\n' || path.back() == '\r')) path.pop_back();
    return path;
  }
  return "";
}

// A cubin from ptxas, for architectures no local driver can link for.
std::string ptxas_cubin(const std::string& ptxas, const PrecompiledKernel& k) {
  auto dir = std::filesystem::temp_directory_path() / fmt::format("ropejit-precompile-{}", ::getpid());
  std::filesystem::create_directories(dir);
  auto ptx = dir / "k.ptx", cubin = dir / "k.cubin";
  std::ofstream(ptx) << k.ptx;
  auto cmd = fmt::format("'{}' -arch=sm_{} -o '{}' '{}' 2>&1", ptxas, k.sm, cubin.string(), ptx.string());
  std::string log;
  int rc = -1;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[4096];
    while (size_t n = fread(buf, 1, sizeof buf, p)) log.append(buf, n);
    rc = pclose(p);
  }
  std::string bytes;
  if (rc == 0) {
    std::ifstream in(cubin, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    bytes = ss.str();
  }
  std::filesystem::remove_all(dir);
  if (rc != 0) throw Error(fmt::format("ptxas failed for {}: {}", k.key, log));
  return bytes;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ropejit-precompile: kernels of any op ahead of time, into the cache, a bundle, or C++ source"};
  nlohmann::json one = nlohmann::json::object();
  int head_dim = 128, rotary_dim = 0, q_heads = 32, k_heads = 8;
  std::string op_name = "rope", weight_dtype = "f32";
  bool one_plus_weight = false;
  std::string style = "neox", dtype = "bf16", table_dtype = "f32", positions = "offset", manifest, bundle, embed;
  std::string name = "kernels", ptxas_path;
  bool out_of_place = false, to_cache = false, no_ptxas = false;
  std::vector<int> sms;
  app.add_option("--op", op_name, "rope or qk_norm_rope");
  app.add_option("--weight-dtype", weight_dtype, "qk_norm_rope: f32 or the q/k dtype");
  app.add_flag("--one-plus-weight", one_plus_weight, "qk_norm_rope: weights in the (1 + w) form");
  app.add_option("--head-dim", head_dim);
  app.add_option("--rotary-dim", rotary_dim, "0 = head_dim");
  app.add_option("--q-heads", q_heads);
  app.add_option("--k-heads", k_heads, "0 = q only");
  app.add_option("--style", style, "neox or gptj");
  app.add_option("--dtype", dtype, "q/k dtype: bf16, f16, f32");
  app.add_option("--table-dtype", table_dtype, "f32 or bf16");
  app.add_option("--positions", positions, "offset, ids32 or ids64");
  app.add_flag("--out-of-place", out_of_place);
  app.add_option("--manifest", manifest,
                 "JSON file: {\"specs\": [{\"op\": \"rope\", \"head_dim\": 128, ...}, ...]} (instead of the flags)");
  app.add_option("--sm", sms, "target architectures, e.g. 80,86,89,90 (default: the local GPU's, else 80,86,89,90)")
      ->delimiter(',');
  app.add_flag("--cache", to_cache, "store the kernels in the disk cache");
  app.add_option("--bundle", bundle, "write a bundle directory (manifest.json, .ptx, .cubin)");
  app.add_option("--embed", embed, "write C++ source embedding the kernels");
  app.add_option("--name", name, "name of the embedded bundle (a C identifier)");
  app.add_option("--ptxas", ptxas_path, "ptxas for cubins of architectures the local driver cannot link for");
  app.add_flag("--no-ptxas", no_ptxas, "PTX only where the local driver cannot make a cubin");
  CLI11_PARSE(app, argc, argv);

  try {
    if (!to_cache && bundle.empty() && embed.empty()) throw Error("nothing to write: give --cache, --bundle or --embed");
    std::vector<ManifestSpec> specs;
    if (!manifest.empty()) {
      std::ifstream in(manifest, std::ios::binary);
      if (!in) throw Error("cannot read manifest " + manifest);
      std::ostringstream text;
      text << in.rdbuf();
      specs = tools::parse_manifest(text.str(), manifest);
    } else {
      nlohmann::json j = {{"op", op_name},       {"head_dim", head_dim}, {"rotary_dim", rotary_dim ? rotary_dim : head_dim},
                          {"style", style},      {"dtype", dtype},       {"table_dtype", table_dtype},
                          {"q_heads", q_heads},  {"k_heads", k_heads},   {"in_place", !out_of_place},
                          {"positions", positions}};
      if (op_name == "qk_norm_rope") j.update({{"weight_dtype", weight_dtype}, {"one_plus_weight", one_plus_weight}});
      specs.push_back(spec_from_json(j, 0));
    }
    auto info = device_info();
    if (sms.empty()) sms = info.available ? std::vector<int>{info.sm} : std::vector<int>{80, 86, 89, 90};
    for (int sm : sms)
      if (sm < 50 || sm > 200) throw Error(fmt::format("--sm {} is not a GPU architecture (e.g. 80, 90)", sm));
    std::string ptxas = no_ptxas ? "" : find_ptxas(ptxas_path);

    std::vector<PrecompiledKernel> kernels;
    for (const auto& spec : specs) {
      auto ks = spec.op == "rope" ? precompile(spec.rope, sms)
                                  : precompile(QkNormRopeSpec{spec.rope, spec.weight_dtype, spec.one_plus_weight}, sms);
      for (auto& k : ks) {
        if (k.cubin.empty() && !ptxas.empty()) k.cubin = ptxas_cubin(ptxas, k);
        fmt::print("{}  sm_{}  PTX {} B, cubin {}\n", k.key, k.sm, k.ptx.size(),
                   k.cubin.empty() ? std::string("none") : fmt::format("{} B", k.cubin.size()));
        kernels.push_back(std::move(k));
      }
    }
    if (to_cache) {
      store_in_cache(kernels);
      fmt::print("stored {} kernel(s) in the disk cache\n", kernels.size());
    }
    if (!bundle.empty()) {
      write_bundle(bundle, kernels);
      fmt::print("wrote bundle {} ({} kernels)\n", bundle, kernels.size());
    }
    if (!embed.empty()) {
      std::ofstream(embed) << embed_bundle_source(kernels, name);
      fmt::print("wrote {} ({} kernels)\n", embed, kernels.size());
    }
    return 0;
  } catch (const Error& e) {
    fmt::print(stderr, "ropejit-precompile: {}\n", e.what());
    return 1;
  } catch (const std::exception& e) {  // nothing foreign may abort the tool
    fmt::print(stderr, "ropejit-precompile: {}\n", e.what());
    return 1;
  }
}
