// Addon entry: allocator tuning at load, threads, seeding, the live-tensor count and the
// registration of every op family.
#include <malloc.h>
#include <sys/file.h>
#include <torch/version.h>
#include <ATen/Parallel.h>
#include <ATen/CPUGeneratorImpl.h>

#include <mutex>

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "common.h"

namespace bn {

// Keep freed tensor memory in the heap instead of returning it to the kernel, so the next
// activation of the same size lands on pages that are already mapped (measured here:
// left to mmap/munmap, elementwise ops ran 20x slower). BUDGETNET_ALLOCATOR=default turns
// this off so the benchmark can keep measuring why it is there.
static bool tunedAllocator = false;
static void TuneAllocator() {
  const char* mode = std::getenv("BUDGETNET_ALLOCATOR");
  if (mode && std::strcmp(mode, "default") == 0) return;
  // 32 MiB is glibc's ceiling for the mmap threshold on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX).
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024);
  mallopt(M_TOP_PAD, 64 * 1024 * 1024);
  InstallCachingAllocator();
  tunedAllocator = true;
}

static Napi::Value SetErrorClassFn(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) throw Napi::TypeError::New(info.Env(), "setErrorClass takes a class");
  SetErrorClass(info.Env(), info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

static Napi::Value LiveTensors(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), (double)TensorHandle::live.load());
}

static Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  Args a{info, "setNumThreads"};
  return Guard("setNumThreads", info, [&]() -> Napi::Value {
    int64_t n = a.int64(0);
    if (n < 1 || n > 1024)
      throw Napi::RangeError::New(info.Env(), "setNumThreads: n must be in [1, 1024]. Received: " + std::to_string(n));
    at::set_num_threads((int)n);
    return info.Env().Undefined();
  });
}

static Napi::Value GetNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), at::get_num_threads());
}

static Napi::Value ManualSeed(const Napi::CallbackInfo& info) {
  Args a{info, "manualSeed"};
  return Guard("manualSeed", info, [&]() -> Napi::Value {
    double s = a.num(0);
    if (!std::isfinite(s) || s < 0 || s >= 1.8e19 || s != std::trunc(s))
      throw std::invalid_argument("seed must be a non-negative integer");
    at::manual_seed((uint64_t)s);
    return info.Env().Undefined();
  });
}

// The default CPU generator's state as a uint8 tensor, and back: what a checkpoint needs to
// resume dropout and other libtorch draws exactly.
static Napi::Value RngState(const Napi::CallbackInfo& info) {
  return Guard("rngState", info, [&]() -> Napi::Value {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    return TensorHandle::Wrap(info.Env(), gen.get_state());
  });
}

static Napi::Value SetRngState(const Napi::CallbackInfo& info) {
  Args a{info, "setRngState"};
  return Guard("setRngState", info, [&]() -> Napi::Value {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(a.tensor(0));
    return info.Env().Undefined();
  });
}

// An exclusive advisory lock (flock) on an open file descriptor, taken without waiting: true when
// taken, false when another open file description holds it. The kernel drops it when the
// descriptor is closed or the process dies (kill -9 included), so a stale lock never blocks.
static Napi::Value TryLockFile(const Napi::CallbackInfo& info) {
  Args a{info, "tryLockFile"};
  return Guard("tryLockFile", info, [&]() -> Napi::Value {
    int64_t fd = a.int64(0);
    if (fd < 0 || fd > INT32_MAX) throw std::invalid_argument("fd must be an open file descriptor");
    if (flock((int)fd, LOCK_EX | LOCK_NB) == 0) return Napi::Boolean::New(info.Env(), true);
    if (errno == EWOULDBLOCK) return Napi::Boolean::New(info.Env(), false);
    throw std::runtime_error(std::string("flock failed: ") + std::strerror(errno));
  });
}

static Napi::Value BuildInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("torchVersion", TORCH_VERSION);
  o.Set("cuda", Napi::Boolean::New(env, at::hasCUDA()));
  o.Set("mkldnn", Napi::Boolean::New(env, at::hasMKLDNN()));
  o.Set("dnnl", Napi::Boolean::New(env, HavePlan()));
  o.Set("gloo", Napi::Boolean::New(env, HaveDist()));
  o.Set("tunedAllocator", Napi::Boolean::New(env, tunedAllocator));
  o.Set("parallelInfo", at::get_parallel_info());
  return o;
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  TuneAllocator();
  InitTensor(env, exports);
  InitMath(env, exports);
  InitNN(env, exports);
  InitAllocator(env, exports);
  InitAugment(env, exports);
  InitAutocast(env, exports);
  InitProfiler(env, exports);
  InitPlan(env, exports);
  InitDist(env, exports);
  InitFusedBn(env, exports);
  InitConvTrain(env, exports);
  Export(env, exports, "setErrorClass", SetErrorClassFn);
  Export(env, exports, "liveTensors", LiveTensors);
  Export(env, exports, "setNumThreads", SetNumThreads);
  Export(env, exports, "getNumThreads", GetNumThreads);
  Export(env, exports, "manualSeed", ManualSeed);
  Export(env, exports, "buildInfo", BuildInfo);
  Export(env, exports, "rngState", RngState);
  Export(env, exports, "setRngState", SetRngState);
  Export(env, exports, "tryLockFile", TryLockFile);
  return exports;
}

}  // namespace bn

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return bn::Init(env, exports); }

NODE_API_MODULE(budgetnet, InitAddon)
