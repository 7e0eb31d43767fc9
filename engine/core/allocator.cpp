#include "engine/core/allocator.h"

#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <vector>

#include "engine/core/error.h"

namespace oar {
namespace {

constexpr size_t kAlign = 64;
// Blocks up to this size are cached; larger ones still are, keyed by exact rounded size.
size_t round_size(size_t n) {
  if (n <= 512) return 512;
  if (n <= (1u << 20)) {  // power of two up to 1 MiB
    size_t p = 512;
    while (p < n) p <<= 1;
    return p;
  }
  const size_t step = 1u << 20;  // 1 MiB granularity above
  return (n + step - 1) / step * step;
}

class CpuCachingAllocator final : public Allocator {
 public:
  ~CpuCachingAllocator() override { empty_cache(); }

  void* allocate(size_t nbytes) override {
    const size_t sz = round_size(nbytes == 0 ? 1 : nbytes);
    std::lock_guard<std::mutex> lock(mu_);
    void* p = nullptr;
    auto it = free_.find(sz);
    if (it != free_.end() && !it->second.empty()) {
      p = it->second.back();
      it->second.pop_back();
      stats_.cached_bytes -= static_cast<int64_t>(sz);
    } else {
      p = std::aligned_alloc(kAlign, sz);
      if (p == nullptr) {
        release_all_locked();
        p = std::aligned_alloc(kAlign, sz);
      }
      if (p == nullptr) OAR_FAIL("out of CPU memory allocating ", sz, " bytes");
      ++stats_.os_allocations;
    }
    stats_.current_bytes += static_cast<int64_t>(sz);
    if (stats_.current_bytes > stats_.peak_bytes) stats_.peak_bytes = stats_.current_bytes;
    return p;
  }

  void deallocate(void* p, size_t nbytes) override {
    if (p == nullptr) return;
    const size_t sz = round_size(nbytes == 0 ? 1 : nbytes);
    std::lock_guard<std::mutex> lock(mu_);
    stats_.current_bytes -= static_cast<int64_t>(sz);
    free_[sz].push_back(p);
    stats_.cached_bytes += static_cast<int64_t>(sz);
  }

  MemoryStats stats() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }
  void reset_peak() override {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.peak_bytes = stats_.current_bytes;
  }
  void empty_cache() override {
    std::lock_guard<std::mutex> lock(mu_);
    release_all_locked();
  }

 private:
  void release_all_locked() {
    for (auto& [sz, v] : free_) {
      for (void* p : v) std::free(p);
      stats_.cached_bytes -= static_cast<int64_t>(sz * v.size());
      v.clear();
    }
    free_.clear();
  }

  mutable std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;
  MemoryStats stats_;
};

}  // namespace

#ifdef OAR_WITH_CUDA
Allocator& cuda_allocator(int index);  // engine/core/cuda/allocator.cu
#endif

Allocator& allocator_for(Device d) {
  if (d.is_cpu()) {
    // Leaked on purpose: tensors in static objects may be freed after main returns.
    static Allocator* cpu = new CpuCachingAllocator();
    return *cpu;
  }
#ifdef OAR_WITH_CUDA
  return cuda_allocator(d.index);
#else
  OAR_FAIL("device ", d.str(), " is not available: this build of oar has no CUDA backend");
#endif
}

MemoryStats memory_stats(Device d) {
  return allocator_for(d).stats();
}
void reset_peak_memory(Device d) {
  allocator_for(d).reset_peak();
}

}  // namespace oar
