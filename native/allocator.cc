// A caching CPU allocator for tensor memory (measured: new activations must land on
// pages that are already mapped). Blocks of 64 KiB and more are kept in free lists by size
// when freed and handed out again for the next request of that size, so a training loop whose
// shapes repeat every step reuses the same memory and never faults fresh pages. Smaller
// requests go to libtorch's default allocator. Keeping tensor data apart from the heap also
// stops the small per-handle objects, freed only when V8 finalizes them, from fragmenting
// the freed activation blocks. BUDGETNET_ALLOCATOR=default leaves libtorch's allocator in place.
//
// Ownership: every block handed out is released by the allocator that made it. Small blocks keep
// the fallback's own deleter; oneDNN's raw_allocate/raw_deallocate pair goes through our single
// raw deleter, which gives a pointer it does not know back to the fallback (forgetting that once
// leaked every small oneDNN scratch buffer: ~0.9 MB a training step). The cache is capped
// (BUDGETNET_ALLOCATOR_CACHE_MB, default a quarter of physical memory): a block freed past the cap
// goes back to the system, so shapes that never repeat cannot grow the process without bound.
#include <c10/core/CPUAllocator.h>

#include <malloc.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common.h"

namespace bn {

namespace {

constexpr size_t kMinCached = 64 * 1024;
constexpr size_t kAlign = 64;  // what c10's alloc_cpu guarantees

size_t RoundUp(size_t n) {
  // 4 KiB granularity below 4 MiB, 64 KiB above: same-shape tensors map to one bucket and
  // nearby sizes can share, while rounding wastes at most a few percent.
  size_t g = n < (4u << 20) ? 4096 : 65536;
  return (n + g - 1) / g * g;
}

size_t PhysicalBytes() {
  static const size_t bytes = [] {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page) : SIZE_MAX;
  }();
  return bytes;
}

size_t DefaultCacheCap() {
  if (const char* mb = std::getenv("BUDGETNET_ALLOCATOR_CACHE_MB")) {
    char* end = nullptr;
    unsigned long long v = std::strtoull(mb, &end, 10);
    if (end != mb && *end == '\0') return static_cast<size_t>(v) << 20;
  }
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return size_t{4} << 30;
  return static_cast<size_t>(pages) * static_cast<size_t>(page) / 4;
}

class CachingCPUAllocator final : public c10::Allocator {
 public:
  explicit CachingCPUAllocator(c10::Allocator* fallback)
      : fallback_(fallback), fallbackRawDelete_(fallback->raw_deleter() != nullptr ? fallback->raw_deleter() : &std::free), cap_(DefaultCacheCap()) {}

  // libtorch 2.3 made c10::Allocator::allocate non-const and added copy_data; both overloads and
  // copy_data are defined (without `override`), so the one this libtorch declares is overridden.
  c10::DataPtr allocate(size_t n) { return Allocate(n); }
  c10::DataPtr allocate(size_t n) const { return Allocate(n); }
  void copy_data(void* dest, const void* src, std::size_t count) const {
    if (count > 0) std::memcpy(dest, src, count);
  }

  c10::DataPtr Allocate(size_t n) const {
    // Where the kernel overcommits memory (vm.overcommit_memory=1), posix_memalign grants any
    // size and the first write gets the process killed; a tensor larger than the machine's
    // memory is refused here instead, as an error naming the size.
    if (n > PhysicalBytes())
      TORCH_CHECK(false, "budgetnet: a tensor of ", n, " bytes is larger than this machine's memory (", PhysicalBytes(),
                  " bytes); check the shape");
    if (n < kMinCached) return fallback_->allocate(n);
    size_t size = RoundUp(n);
    void* ptr = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.find(size);
      if (it != free_.end() && !it->second.empty()) {
        ptr = it->second.back();
        it->second.pop_back();
        cachedBytes_ -= size;
      }
    }
    if (ptr == nullptr) {
      ptr = Fresh(size);
      std::lock_guard<std::mutex> lock(mu_);
      reservedBytes_ += size;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      blockSize_[ptr] = size;
    }
    return {ptr, ptr, &Release, c10::Device(c10::DeviceType::CPU)};
  }

  // oneDNN allocates through raw_allocate/raw_deallocate, which needs a deleter taking the data
  // pointer: ours does (each DataPtr's context is its data pointer).
  c10::DeleterFnPtr raw_deleter() const override { return &Release; }

  // Frees every cached block (memory in use is untouched).
  size_t EmptyCache() {
    std::lock_guard<std::mutex> lock(mu_);
    size_t freed = 0;
    for (auto& [size, blocks] : free_) {
      for (void* p : blocks) std::free(p);
      freed += size * blocks.size();
      blocks.clear();
    }
    reservedBytes_ -= freed;
    cachedBytes_ = 0;
    return freed;
  }

  void Stats(size_t& reserved, size_t& cached) const {
    std::lock_guard<std::mutex> lock(mu_);
    reserved = reservedBytes_;
    cached = cachedBytes_;
  }

  static CachingCPUAllocator* instance;

 private:
  void* Fresh(size_t size) const {
    void* p = nullptr;
    if (posix_memalign(&p, kAlign, size) == 0) return p;
    // Out of memory: give the cache back to the system and try once more.
    const_cast<CachingCPUAllocator*>(this)->EmptyCache();
    if (posix_memalign(&p, kAlign, size) == 0) return p;
    TORCH_CHECK(false, "budgetnet: out of memory allocating ", size, " bytes for a tensor");
  }

  // The deleter of every cached block, and the raw deleter of every block (see Ownership above).
  static void Release(void* ptr) {
    if (ptr == nullptr) return;
    CachingCPUAllocator* self = instance;
    {
      std::lock_guard<std::mutex> lock(self->mu_);
      auto it = self->blockSize_.find(ptr);
      if (it != self->blockSize_.end()) {
        size_t size = it->second;
        self->blockSize_.erase(it);
        if (self->cachedBytes_ + size <= self->cap_) {
          self->free_[size].push_back(ptr);
          self->cachedBytes_ += size;
          return;
        }
        self->reservedBytes_ -= size;
      } else {
        // A small block from the fallback, released through raw_deallocate.
        self->fallbackRawDelete_(ptr);
        return;
      }
    }
    std::free(ptr);  // over the cap: back to the system
  }

  c10::Allocator* fallback_;
  c10::DeleterFnPtr fallbackRawDelete_;
  size_t cap_;
  mutable std::mutex mu_;
  mutable std::unordered_map<size_t, std::vector<void*>> free_;
  mutable std::unordered_map<void*, size_t> blockSize_;
  mutable size_t reservedBytes_ = 0;
  mutable size_t cachedBytes_ = 0;
};

CachingCPUAllocator* CachingCPUAllocator::instance = nullptr;

Napi::Value EmptyCacheFn(const Napi::CallbackInfo& info) {
  auto* a = CachingCPUAllocator::instance;
  return Napi::Number::New(info.Env(), a ? (double)a->EmptyCache() : 0.0);
}

Napi::Value AllocatorStats(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  size_t reserved = 0, cached = 0;
  if (CachingCPUAllocator::instance) CachingCPUAllocator::instance->Stats(reserved, cached);
  o.Set("caching", Napi::Boolean::New(info.Env(), CachingCPUAllocator::instance != nullptr));
  o.Set("reservedBytes", Napi::Number::New(info.Env(), (double)reserved));
  o.Set("cachedBytes", Napi::Number::New(info.Env(), (double)cached));
  return o;
}

// glibc's heap figures: bytes in use (brk heap + mmapped chunks) and bytes free inside the heap.
// A leak grows the first; fragmentation grows the second.
Napi::Value MallocStats(const Napi::CallbackInfo& info) {
  struct mallinfo2 mi = mallinfo2();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("inUseBytes", Napi::Number::New(info.Env(), (double)(mi.uordblks + mi.hblkhd)));
  o.Set("freeBytes", Napi::Number::New(info.Env(), (double)mi.fordblks));
  return o;
}

}  // namespace

bool InstallCachingAllocator() {
  if (CachingCPUAllocator::instance) return true;
  // Never destroyed: tensors alive at process exit are released after static destructors run.
  CachingCPUAllocator::instance = new CachingCPUAllocator(c10::GetDefaultCPUAllocator());
  c10::SetCPUAllocator(CachingCPUAllocator::instance, /*priority=*/100);
  return true;
}

void InitAllocator(Napi::Env env, Napi::Object exports) {
  Export(env, exports, "emptyCache", EmptyCacheFn);
  Export(env, exports, "allocatorStats", AllocatorStats);
  Export(env, exports, "mallocStats", MallocStats);
}

}  // namespace bn
