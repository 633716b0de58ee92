// The PTX the NVPTX backend emits: it assembles with ptxas for sm_80 and sm_90 with no spills and no
// local memory, and aligned 16-bit specs use 128-bit global loads and stores.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>

#include "internal.hpp"

using namespace ropejit;
using namespace ropejit::rope;
using ropejit::test::rope_ptx;
using ropejit::test::rope_symbol;

namespace {

std::string find_ptxas() {
  namespace fs = std::filesystem;
  for (const char* p : {ROPEJIT_PTXAS, "/usr/local/cuda/bin/ptxas"})
    if (p[0] && fs::exists(p)) return p;
  return "";
}

const std::string& ptxas() {
  static const std::string path = find_ptxas();
  return path;
}

struct Assembled {
  int rc;
  std::string log;
};

Assembled assemble(const std::string& ptx, int sm, const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / fmt::format("ropejit-ptx-{}", ::getpid());
  std::filesystem::create_directories(dir);
  auto file = dir / (name + ".ptx");
  std::ofstream(file) << ptx;
  std::string cmd = fmt::format("'{}' -arch=sm_{} -v -o /dev/null '{}' 2>&1", ptxas(), sm, file.string());
  Assembled a{-1, ""};
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[4096];
    while (size_t n = fread(buf, 1, sizeof buf, p)) a.log.append(buf, n);
    a.rc = pclose(p);
  }
  std::filesystem::remove_all(dir);
  return a;
}

std::vector<std::pair<RopeSpec, LaunchConfig>> representative() {
  std::vector<std::pair<RopeSpec, LaunchConfig>> out;
  for (RopeStyle style : {RopeStyle::neox, RopeStyle::gptj})
    for (DType dt : {DType::bf16, DType::f16, DType::f32})
      for (bool in_place : {true, false}) {
        RopeSpec s;
        s.style = style;
        s.dtype = dt;
        s.head_dim = 128;
        s.rotary_dim = in_place ? 128 : 64;
        s.q_heads = 32;
        s.k_heads = 8;
        s.in_place = in_place;
        s.positions = in_place ? PositionKind::offset : PositionKind::ids_i64;
        auto c = heuristic_config(s, 16);
        c.streaming = in_place && dt != DType::f32 ? 1 : 0;  // the .cs forms assemble too
        out.push_back({s, c});
      }
  RopeSpec big;  // the largest head
  big.head_dim = 512;
  big.rotary_dim = 512;
  big.dtype = DType::f32;
  big.q_heads = 64;
  big.k_heads = 8;
  out.push_back({big, heuristic_config(big, 16)});
  // The rotations of real checkpoints: MLA's rope part at the end of a 192-dim head, bf16 in and f32
  // out, Qwen2-VL's multimodal sections, and HF's f32 angles reduced exactly in the kernel.
  RopeSpec mla;
  mla.head_dim = 192, mla.rotary_dim = 64, mla.rotary_offset = 128, mla.in_place = false;
  out.push_back({mla, heuristic_config(mla, 16)});
  RopeSpec wide;
  wide.in_place = false, wide.out_dtype = DType::f32, wide.rotary_dim = 64;
  out.push_back({wide, heuristic_config(wide, 16)});
  RopeSpec mm;
  mm.positions = PositionKind::ids_i64, mm.mrope_section = {16, 24, 24};
  out.push_back({mm, heuristic_config(mm, 16)});
  RopeSpec hf;
  hf.angles = AngleMode::hf_compat, hf.mrope_section = {24, 20, 20}, hf.mrope_interleaved = true;
  hf.positions = PositionKind::ids_i32;
  out.push_back({hf, LaunchConfig{256, 8, 2, 1}});  // the heuristic's w2 for in-kernel angles aside: 16-byte accesses
  out.push_back({hf, heuristic_config(hf, 16)});
  // Several tokens per program: d64 (128 threads a token) with two and four, varlen with two.
  RopeSpec small;
  small.head_dim = small.rotary_dim = 64;
  for (int tokens : {2, 4}) {
    auto c = heuristic_config(small, 16);
    c.tokens = tokens;
    out.push_back({small, c});
  }
  RopeSpec packed;
  packed.positions = PositionKind::varlen_i32, packed.varlen_depth = 8;
  auto pc = heuristic_config(packed, 16);
  pc.tokens = 2;
  out.push_back({packed, pc});
  return out;
}

}  // namespace

TEST_CASE("ptx: generated for sm_80 and sm_90 at PTX ISA 8.5, with the kernel entry and launch bound") {
  RopeSpec s;
  auto c = heuristic_config(s, 16);
  for (int sm : {80, 90}) {
    auto ptx = rope_ptx(s, c, codegen::PtxTarget{sm, 85});
    CHECK(ptx.find(".version 8.5") != std::string::npos);
    CHECK(ptx.find(fmt::format(".target sm_{}", sm)) != std::string::npos);
    CHECK(ptx.find(".visible .entry " + rope_symbol(s, c)) != std::string::npos);
    CHECK(ptx.find(fmt::format(".maxntid {}, 1, 1", c.threads * c.tokens)) != std::string::npos);
    // no approximate math anywhere: the rotation is plain fma
    CHECK(ptx.find(".approx") == std::string::npos);
    CHECK(ptx.find("fma.rn.f32") != std::string::npos);
  }
  CHECK_THROWS_WITH_AS(rope_ptx(s, c, codegen::PtxTarget{90, 90}), doctest::Contains("LLVM 19 emits at most 8.5"), Error);
}

TEST_CASE("ptx: 128-bit global loads and stores for aligned 16-bit specs") {
  std::regex ld128(R"(ld\.global(\.nc|\.cs)?\.v4\.(b32|u32|f32))"), st128(R"(st\.global(\.cs)?\.v4\.(b32|u32|f32))");
  std::regex narrow_ld(R"(ld\.global(\.nc)?(\.v2)?\.(b16|u16|f16|bf16)\s)");
  for (auto [spec, config] : representative()) {
    if (spec.dtype == DType::f32 && spec.head_dim == 512) continue;
    if (config.vector_width * dtype_size(spec.dtype) < 16) continue;  // in-kernel angles' narrower heuristic
    INFO(spec.key() << " " << config.key());
    auto ptx = rope_ptx(spec, config, codegen::PtxTarget{90, 85});
    CHECK(std::regex_search(ptx, ld128));
    CHECK(std::regex_search(ptx, st128));
    if (spec.dtype != DType::f32) CHECK_FALSE(std::regex_search(ptx, narrow_ld));
  }
}

TEST_CASE("ptx: streaming configs use ld/st.global.cs for their 16-byte q/k accesses") {
  RopeSpec s;
  auto c = heuristic_config(s, 8);
  c.streaming = 1;
  auto ptx = rope_ptx(s, c, codegen::PtxTarget{90, 85});
  CHECK(ptx.find("ld.global.cs.v4.b32") != std::string::npos);
  CHECK(ptx.find("st.global.cs.v4.b32") != std::string::npos);
  c.streaming = 0;
  CHECK(rope_ptx(s, c, codegen::PtxTarget{90, 85}).find(".cs.") == std::string::npos);
}

TEST_CASE("ptx: assembles with ptxas for sm_80 and sm_90, no spills, no local memory" *
          doctest::skip(find_ptxas().empty())) {
  if (ptxas().empty()) return;
  MESSAGE("ptxas: " << ptxas());
  for (auto [spec, config] : representative())
    for (int sm : {80, 90}) {
      INFO(spec.key() << " " << config.key() << " sm_" << sm);
      auto a = assemble(rope_ptx(spec, config, codegen::PtxTarget{sm, 85}), sm, rope_symbol(spec, config));
      REQUIRE_MESSAGE(a.rc == 0, a.log);
      CHECK_MESSAGE(a.log.find("0 bytes spill stores, 0 bytes spill loads") != std::string::npos, a.log);
      CHECK_MESSAGE(a.log.find("0 bytes stack frame") != std::string::npos, a.log);
    }
}

TEST_CASE("ptx: QK-norm + RoPE reduces each head with warp shuffles only, and assembles without spills") {
  for (int d : {64, 80, 128, 256}) {
    QkNormRopeSpec s;
    s.rope.head_dim = s.rope.rotary_dim = d;
    s.rope.k_heads = 8;
    auto c = heuristic_config(s.rope, 8, 0, 0, true);
    INFO(s.key() << " " << c.key());
    auto def = qk_norm_rope::kernel_def(s, c);
    auto ptx = jit::generate_ptx(def, codegen::PtxTarget{90, 85});
    CHECK(ptx.find("shfl.sync.bfly") != std::string::npos);
    CHECK(ptx.find("bar.sync") == std::string::npos);
    CHECK(ptx.find(".approx") == std::string::npos);
    CHECK(ptx.find("sqrt.rn.f32") != std::string::npos);
    if (ptxas().empty()) continue;
    auto a = assemble(ptx, 90, def.symbol());
    REQUIRE_MESSAGE(a.rc == 0, a.log);
    CHECK_MESSAGE(a.log.find("0 bytes spill stores, 0 bytes spill loads") != std::string::npos, a.log);
  }
}
