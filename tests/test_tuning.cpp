// The tuning file: records saved atomically and merged, read back, and used by apply_rope; a broken
// or mismatched record never breaks a call. Also the heuristic's and the sweep's configs.
#include <doctest/doctest.h>

#include <atomic>
#include <thread>
#include <sys/wait.h>
#include <unistd.h>
#include <fmt/format.h>
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
    std::filesystem::create_directories(dir / "sub");
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
  save_tuning({TuningRecord{"host-cpu", "rope", d.spec_key, token_bucket(300), config_values(tuned), 1.0},
               TuningRecord{"other-device", "rope", d.spec_key, token_bucket(300), config_values(KernelConfig{32, 8, 1}), 2.0}});
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
  save_tuning({TuningRecord{"host-cpu", "rope", d.spec_key, token_bucket(300), config_values(better), 3.0}});
  back = load_tuning();
  CHECK(back.size() == 2);
  CHECK(c.describe().config == better);
  // And the tuned kernel computes the right thing.
  Case cs;
  cs.batch = 1;
  cs.seq = 200;
  save_tuning({TuningRecord{"host-cpu", "rope", d.spec_key, token_bucket(200), config_values(KernelConfig{32, 2, 5}), 1.0}});
  auto before = stats();
  auto r = run_case(cs, Backend::host, 77);
  CHECK(stats().kernels_generated == before.kernels_generated + 1);  // the tuned t32.w2.u5, new
  CHECK(r.q.ok());
  CHECK(r.k.ok());
  // No temporary files are left beside the file (only its lock).
  int files = 0;
  for (auto& e : std::filesystem::directory_iterator(std::filesystem::path(file.path).parent_path()))
    files += e.path().extension() != ".lock";
  CHECK(files == 1);
  CHECK(load_tuning().size() == 3);
}

TEST_CASE("tuning: a broken file or a record the memory cannot use falls back to the heuristic") {
  TempTuningFile file;
  Call c;
  auto d = c.describe();
  // A width of 8 needs 16-byte alignment; this q is only 2-byte aligned.
  save_tuning({TuningRecord{"host-cpu", "rope", d.spec_key, token_bucket(299), config_values(KernelConfig{256, 8, 2}), 1.0}});
  TensorView q = c.q.view, k = c.k.view;
  q.data = c.q.bytes.data() + 2;
  q.seq = k.seq = 299;
  auto d2 = describe_kernel(q, &k, Positions::contiguous(3), c.table.view(), c.opt);
  CHECK(d2.source == "heuristic");
  CHECK(d2.config.vector_width == 1);

  std::ofstream(file.path) << "{ not json";
  CHECK_THROWS_WITH_AS(load_tuning(), doctest::Contains("is not a JSON object"), Error);
  save_tuning({}, (std::filesystem::path(file.path).parent_path() / "other.json").string());  // forces a reload
  CHECK(c.describe().source == "heuristic");
}

TEST_CASE("tuning: valid JSON of the wrong shape is an Error naming the field, and never breaks a call") {
  TempTuningFile file;
  Call c;
  const std::string ok = R"({"device":"host-cpu","op":"rope","spec":"s","token_bucket":512,"config":{"threads":64,"vector_width":4,"unroll":3,"streaming":0}})";
  struct Bad {
    std::string text, says;
  };
  const Bad bad[] = {
      {R"({"format":"ropejit-tuning-2","records":[1]})", "record 0: not an object"},
      {R"({"format":"ropejit-tuning-2","records":[{"device":7,"op":"rope","spec":"s","token_bucket":1,"config":{}}]})", "\"device\""},
      {R"({"format":"ropejit-tuning-2","records":[)" + ok + R"(,{"device":"d","op":"rope","spec":"s","token_bucket":"1","config":{}}]})", "record 1: \"token_bucket\""},
      {R"({"format":"ropejit-tuning-2","records":[{"device":"d","op":"rope","spec":"s","token_bucket":1,"config":{"threads":"128"}}]})", "\"threads\""},
      {R"({"format":"ropejit-tuning-1","records":[{"device":"d","spec":"s","token_bucket":1,"threads":64,"vector_width":4,"unroll":null,"streaming":0}]})", "\"unroll\""},
      {R"({"format":"ropejit-tuning-2","records":{}})", "no \"records\" array"},
      {R"([1,2])", "not a JSON object"},
      {R"({"format":3,"records":[]})", "\"format\""},
  };
  for (const auto& b : bad) {
    INFO(b.text);
    std::ofstream(file.path) << b.text;
    CHECK_THROWS_WITH_AS(load_tuning(), doctest::Contains(b.says.c_str()), Error);
    // save_tuning refuses to merge into it (and leaves it as it was)...
    CHECK_THROWS_AS(save_tuning({}), Error);
    // ...and the ops ignore it: the heuristic serves, on every entry point.
    save_tuning({}, (std::filesystem::path(file.path).parent_path() / "other.json").string());  // forces a reload
    CHECK(c.describe().source == "heuristic");
    auto r = run_case(Case{}, Backend::host, 5);
    CHECK(r.q.ok());
  }
}

TEST_CASE("tuning: format-1 files (RoPE records with flat config fields) are still read") {
  TempTuningFile file;
  Call c;
  auto d = c.describe();
  std::ofstream(file.path) << R"({"format":"ropejit-tuning-1","records":[{"device":"host-cpu","spec":")" << d.spec_key
                           << R"(","token_bucket":512,"threads":64,"vector_width":4,"unroll":3,"streaming":0,"gbps":1.5}]})";
  auto back = load_tuning();
  REQUIRE(back.size() == 1);
  CHECK(back[0].op == "rope");
  CHECK(kernel_config_from(back[0].config) == KernelConfig{64, 4, 3, 0});
  save_tuning({}, (std::filesystem::path(file.path).parent_path() / "other.json").string());  // forces a reload
  CHECK(c.describe().source == "tuned");
}

TEST_CASE("tuning: records are per op: a QK-norm + RoPE record tunes only that op") {
  TempTuningFile file;
  Call c;
  std::vector<float> w(128, 1.0f);
  QkNorm norm{w.data(), w.data(), DType::f32, 1e-6, false};
  auto fused = describe_qk_norm_rope(c.q.view, &c.k.view, Positions::contiguous(3), c.table.view(), norm, c.opt);
  CHECK(fused.source == "heuristic");
  KernelConfig tuned{128, 8, 1, 0};
  save_tuning({TuningRecord{"host-cpu", "qk_norm_rope", fused.spec_key, token_bucket(300), config_values(tuned), 1.0}});
  fused = describe_qk_norm_rope(c.q.view, &c.k.view, Positions::contiguous(3), c.table.view(), norm, c.opt);
  CHECK(fused.source == "tuned");
  CHECK(fused.config == tuned);
  CHECK(c.describe().source == "heuristic");
}

TEST_CASE("tuning: 3 processes and 8 threads saving while 4 threads run the op: every record kept, every call right") {
  TempTuningFile file;
  Call c;
  const std::string spec_key = c.describe().spec_key;
  auto record = [&](int who, int i) {
    return TuningRecord{fmt::format("device-{}", who), "rope", spec_key, i + 1,
                        config_values(KernelConfig{64, 4, 1 + i % 3}), double(i)};
  };
  constexpr int kEach = 10, kProcesses = 3, kSavers = 8, kCallers = 4;
  std::vector<pid_t> children;  // forked before any thread starts
  for (int p = 0; p < kProcesses; ++p) {
    pid_t pid = ::fork();
    if (pid == 0) {
      try {
        for (int i = 0; i < kEach; ++i) save_tuning({record(100 + p, i)});
      } catch (...) {
        ::_exit(1);
      }
      ::_exit(0);
    }
    children.push_back(pid);
  }
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kSavers; ++t)
    threads.emplace_back([&, t] {
      try {
        for (int i = 0; i < kEach; ++i) save_tuning({record(t, i)});
      } catch (...) {
        ++failures;
      }
    });
  for (int t = 0; t < kCallers; ++t)
    threads.emplace_back([&, t] {
      Case cs;
      for (int i = 0; i < 5; ++i) {  // each call may re-read the file a saver just replaced
        auto r = run_case(cs, Backend::host, 500 + uint64_t(10 * t + i));
        if (!r.q.ok() || !r.k.ok()) ++failures;
      }
    });
  for (auto& th : threads) th.join();
  for (pid_t pid : children) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  }
  CHECK(failures.load() == 0);
  CHECK(load_tuning().size() == size_t((kProcesses + kSavers) * kEach));
}
