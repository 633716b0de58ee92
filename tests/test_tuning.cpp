// The tuning file: records saved atomically and merged, read back, and used by apply_rope; a broken
// or mismatched record never breaks a call. Also the heuristic's and the sweep's configs.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "ropejit/ropejit.hpp"
#include "support.hpp"

using namespace ropejit;
using namespace ropejit::test;

namespace {

struct TempTuningFile {
  std::filesystem::path dir = std::filesystem::temp_directory_path() / ("ropejit-tuning-" + std::to_string(::getpid()));
  std::string path = (dir / "sub" / "tuning.json").string();
  TempTuningFile() {
    std::filesystem::remove_all(dir);
    ::setenv("ROPEJIT_TUNING_FILE", path.c_str(), 1);
  }
  ~TempTuningFile() {
    ::unsetenv("ROPEJIT_TUNING_FILE");
    std::filesystem::remove_all(dir);
    save_tuning({}, (dir / "reset.json").string());  // makes apply_rope forget the records
    std::filesystem::remove_all(dir);
  }
};

struct Call {
  HostTensor q{Layout::bshd, DType::bf16, 1, 300, 32, 128};
  HostTensor k{Layout::bshd, DType::bf16, 1, 300, 8, 128};
  RopeTable table{Backend::host, 400, 128};
  RopeOptions opt;
  Call() {
    std::mt19937_64 rng(1);
    q.fill_random(rng);
    k.fill_random(rng);
    opt.backend = Backend::host;
  }
  KernelChoice describe() { return describe_kernel(q.view, &k.view, Positions::contiguous(3), table.view(), opt); }
};

}  // namespace

TEST_CASE("tuning: token buckets and the file path") {
  CHECK(token_bucket(1) == 1);
  CHECK(token_bucket(64) == 64);
  CHECK(token_bucket(65) == 128);
  CHECK(token_bucket(16384) == 16384);
  ::setenv("ROPEJIT_CACHE_DIR", "/tmp/rj-cache", 1);
  CHECK(tuning_file_path() == "/tmp/rj-cache/tuning.json");
  ::unsetenv("ROPEJIT_CACHE_DIR");
  ::setenv("XDG_CACHE_HOME", "/tmp/xdg", 1);
  CHECK(tuning_file_path() == "/tmp/xdg/ropejit/tuning.json");
  ::unsetenv("XDG_CACHE_HOME");
}

TEST_CASE("tuning: the heuristic's config and the sweep's candidates") {
  Call c;
  auto d = c.describe();
  CHECK(d.source == "heuristic");
  CHECK(d.spec_key == "rope.neox.d128.r128.bf16.tabf32.hq32.hk8.inplace.offset");
  CHECK(d.config.key() == "t256.w8.u2");  // one q head per thread: what the H100 sweeps favour
  CHECK(d.candidates.size() > 20);
  for (const auto& cand : d.candidates) {  // every candidate is a valid, distinct config
    INFO(cand.key());
    CHECK(cand.threads >= 128 / cand.vector_width / 2);
    CHECK(std::count(d.candidates.begin(), d.candidates.end(), cand) == 1);
  }
}

TEST_CASE("tuning: records saved, merged, reloaded and used by apply_rope") {
  TempTuningFile file;
  Call c;
  auto d = c.describe();
  KernelConfig tuned{64, 4, 3};
  save_tuning({TuningRecord{"host-cpu", d.spec_key, token_bucket(300), tuned, 1.0},
               TuningRecord{"other-device", d.spec_key, token_bucket(300), KernelConfig{32, 8, 1}, 2.0}});
  auto back = load_tuning();
  REQUIRE(back.size() == 2);
  auto d2 = c.describe();
  CHECK(d2.source == "tuned");
  CHECK(d2.config == tuned);
  // Another bucket is not tuned.
  HostTensor q2(Layout::bshd, DType::bf16, 1, 20, 32, 128), k2(Layout::bshd, DType::bf16, 1, 20, 8, 128);
  CHECK(describe_kernel(q2.view, &k2.view, Positions::contiguous(3), c.table.view(), c.opt).source == "heuristic");
  // A record for the same key replaces the old one; the others stay.
  KernelConfig better{128, 8, 2};
  save_tuning({TuningRecord{"host-cpu", d.spec_key, token_bucket(300), better, 3.0}});
  back = load_tuning();
  CHECK(back.size() == 2);
  CHECK(c.describe().config == better);
  // And the tuned kernel computes the right thing.
  Case cs;
  cs.batch = 1;
  cs.seq = 200;
  save_tuning({TuningRecord{"host-cpu", d.spec_key, token_bucket(200), KernelConfig{32, 2, 5}, 1.0}});
  auto before = stats();
  auto r = run_case(cs, Backend::host, 77);
  CHECK(stats().kernels_generated == before.kernels_generated + 1);  // the tuned t32.w2.u5, new
  CHECK(r.q.ok());
  CHECK(r.k.ok());
  // No temporary files are left beside the file.
  int files = 0;
  for (auto& e : std::filesystem::directory_iterator(std::filesystem::path(file.path).parent_path())) (void)e, ++files;
  CHECK(files == 1);
  CHECK(load_tuning().size() == 3);
}

TEST_CASE("tuning: a broken file or a record the memory cannot use falls back to the heuristic") {
  TempTuningFile file;
  Call c;
  auto d = c.describe();
  // A width of 8 needs 16-byte alignment; this q is only 2-byte aligned.
  save_tuning({TuningRecord{"host-cpu", d.spec_key, token_bucket(299), KernelConfig{256, 8, 2}, 1.0}});
  TensorView q = c.q.view, k = c.k.view;
  q.data = c.q.bytes.data() + 2;
  q.seq = k.seq = 299;
  auto d2 = describe_kernel(q, &k, Positions::contiguous(3), c.table.view(), c.opt);
  CHECK(d2.source == "heuristic");
  CHECK(d2.config.vector_width == 1);

  std::ofstream(file.path) << "{ not json";
  CHECK_THROWS_WITH_AS(load_tuning(), doctest::Contains("is not valid ropejit tuning JSON"), Error);
  save_tuning({}, (std::filesystem::path(file.path).parent_path() / "other.json").string());  // forces a reload
  CHECK(c.describe().source == "heuristic");
}
