#include "jit/compile.hpp"

#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <chrono>
#include <memory>

#include "codegen/builder_impl.hpp"
#include "codegen/host_backend.hpp"
#include "codegen/nvptx_backend.hpp"
#include "core/stats.hpp"
#include "jit/target.hpp"
#include "runtime/context.hpp"
#include "runtime/driver_api.hpp"

namespace ropejit::jit {

namespace {
double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// Runs the definition's body into `module` under `name`; returns the symbol to look up.
std::string build(const KernelDef& def, llvm::Module& module, lang::Target target, const std::string& name) {
  if (!def.body) throw Error(ErrorKind::internal, "kernel " + def.key + " has no body");
  lang::Builder::Impl impl(module, target, name, def.signature, def.threads);
  lang::Builder b(&impl);
  impl.self = &b;
  def.body(b);
  return impl.finish();
}

// LLVM's first generation in a process costs about twice a later one: its one-time set-up, its code
// paged in, a target machine made. On the first ensure_context (the first driver use, typically
// the model's table, before any kernel) a background thread pays that with a small kernel for this
// device's target; its machine then serves the first real kernel from the pool. ROPEJIT_WARM_LLVM=0
// turns it off. fork() and exit() wait for it: no child inherits LLVM's locks mid-use, and LLVM's
// statics outlive it.
class WarmUp {
 public:
  static void start() noexcept {
    const char* v = std::getenv("ROPEJIT_WARM_LLVM");
    if (v && std::string(v) == "0") return;
    try {
      // The target is found here, in the caller's thread: statics the thread uses are then made
      // before the exit handler below, and destroyed after it.
      const auto& props = runtime::device_props(0);
      const auto target = ptx_target(props.sm, runtime::driver().version, props.name.c_str());
      static WarmUp* warm = new WarmUp(target);  // never destroyed: exit() must not wait on it
      (void)warm;
    } catch (...) {  // nothing to warm (an old driver): the first kernel says why
    }
  }

 private:
  explicit WarmUp(codegen::PtxTarget target) {
    pthread_atfork(&WarmUp::wait, nullptr, nullptr);
    std::atexit(&WarmUp::wait);
    try {
      std::thread([target] {
        try {
          KernelDef def;
          def.key = "ropejit_warm_up";
          def.signature = Signature{Arg::pointer("x", DType::f32)};
          def.threads = 32;
          def.body = [](lang::Builder& b) {
            lang::Value p = b.param("x") + b.thread_id() * 4;
            b.store(p, b.load(p, 4, {.align = 16}) * 2.0, {.align = 16});
          };
          llvm::LLVMContext ctx;
          llvm::Module module(def.symbol(), ctx);
          codegen::configure_nvptx_module(module, target);
          build(def, module, lang::Target::nvptx, def.symbol());
          codegen::emit_ptx(module, target, /*record=*/false);
        } catch (...) {
        }
        finish();
      }).detach();
    } catch (...) {  // no thread (a thread limit): nothing to wait for
      finish();
    }
  }
  static std::mutex& mutex() {
    static auto* m = new std::mutex;
    return *m;
  }
  static std::condition_variable& finished() {
    static auto* c = new std::condition_variable;
    return *c;
  }
  static bool& done() {
    static bool d = false;
    return d;
  }
  static void finish() {
    std::lock_guard<std::mutex> lock(mutex());
    done() = true;
    finished().notify_all();
  }
  static void wait() {
    std::unique_lock<std::mutex> lock(mutex());
    finished().wait(lock, [] { return done(); });
  }
};

const bool warm_up_registered = (runtime::on_first_context = &WarmUp::start, true);

}  // namespace

std::string generate_ptx(const KernelDef& def, const codegen::PtxTarget& target) {
  auto t0 = std::chrono::steady_clock::now();
  llvm::LLVMContext ctx;
  llvm::Module module(def.symbol(), ctx);
  codegen::configure_nvptx_module(module, target);
  build(def, module, lang::Target::nvptx, def.symbol());
  std::string ptx = codegen::emit_ptx(module, target);
  record_codegen(ms_since(t0));
  return ptx;
}

codegen::HostGridFn generate_host(const KernelDef& def) {
  auto t0 = std::chrono::steady_clock::now();
  auto ctx = std::make_unique<llvm::LLVMContext>();
  auto module = std::make_unique<llvm::Module>(def.symbol(), *ctx);
  codegen::configure_host_module(*module);
  // One process-wide JIT holds every host kernel: each build gets a name of its own (two Kernel
  // objects may share a key, and keys differing only in '.' and '_' share a symbol).
  static std::atomic<uint64_t> builds{0};
  auto symbol = build(def, *module, lang::Target::host, def.symbol() + "_h" + std::to_string(builds++));
  auto fn = codegen::compile_host(std::move(ctx), std::move(module), symbol);
  record_codegen(ms_since(t0));
  return fn;
}

}  // namespace ropejit::jit
