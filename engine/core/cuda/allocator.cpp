// The caching allocator for GPU memory: freed blocks go to per-size free lists and are reused,
// so a training step reaches cudaMalloc (which synchronises the device) only in its first
// iterations. Blocks are reused in the order of the device's stream (see runtime.h).
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "engine/core/allocator.h"
#include "engine/core/cuda/check.h"
#include "engine/core/cuda/runtime.h"

namespace oar {
namespace {

// 512-byte granules up to 1 MiB, powers of two would waste up to half; 2 MiB steps above.
size_t round_size(size_t n) {
  constexpr size_t kSmall = 512, kLargeStep = 2u << 20;
  if (n <= (1u << 20)) return (n + kSmall - 1) / kSmall * kSmall;
  return (n + kLargeStep - 1) / kLargeStep * kLargeStep;
}

class CudaCachingAllocator final : public Allocator {
 public:
  explicit CudaCachingAllocator(int index) : index_(index) {}

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
      cuda::DeviceGuard g(index_);
      cudaError_t e = cudaMalloc(&p, sz);
      if (e == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        release_all_locked();
        e = cudaMalloc(&p, sz);
      }
      if (e != cudaSuccess) {
        cudaGetLastError();
        OAR_FAIL("out of memory on cuda:", index_, " allocating ", sz, " bytes (",
                 stats_.current_bytes, " bytes in use by tensors, peak ", stats_.peak_bytes,
                 "): ", cudaGetErrorString(e));
      }
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
  // cudaFree waits for the device, so queued kernels using a cached block finish first.
  void release_all_locked() {
    cuda::DeviceGuard g(index_);
    for (auto& [sz, v] : free_) {
      for (void* p : v) cudaFree(p);
      stats_.cached_bytes -= static_cast<int64_t>(sz * v.size());
    }
    free_.clear();
  }

  int index_;
  mutable std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;
  MemoryStats stats_;
};

// Pinned host blocks, cached by rounded size. A block is handed back only when its tensor dies;
// the staging code that owns the tensor keeps it alive until the copy reading it has finished.
class PinnedHostAllocator final : public Allocator {
 public:
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
      cudaError_t e = cudaHostAlloc(&p, sz, cudaHostAllocDefault);
      if (e == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        release_all_locked();
        e = cudaHostAlloc(&p, sz, cudaHostAllocDefault);
      }
      if (e != cudaSuccess) {
        cudaGetLastError();
        OAR_FAIL("cannot allocate ", sz, " bytes of pinned host memory (", stats_.current_bytes,
                 " bytes pinned already): ", cudaGetErrorString(e));
      }
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
      for (void* p : v) cudaFreeHost(p);
      stats_.cached_bytes -= static_cast<int64_t>(sz * v.size());
    }
    free_.clear();
  }

  mutable std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;
  MemoryStats stats_;
};

}  // namespace

namespace cuda {

Allocator& pinned_allocator() {
  static auto* a = new PinnedHostAllocator();  // leaked: tensors may die after main returns
  return *a;
}

Tensor pinned_empty(const Shape& shape, DType dtype) {
  const size_t nbytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
  void* p = pinned_allocator().allocate(nbytes);
  return from_blob(p, shape, dtype,
                   [nbytes](void* q) { pinned_allocator().deallocate(q, nbytes); });
}

}  // namespace cuda

Allocator& cuda_allocator(int index) {
  constexpr int kMax = 16;
  const int n = cuda::device_count();
  OAR_CHECK(n > 0, "device cuda:", index, " is not available: no CUDA device is visible");
  OAR_CHECK(index >= 0 && index < n && index < kMax, "device cuda:", index,
            " is not available: ", n, " CUDA device(s) visible (cuda:0..cuda:", n - 1, ")");
  // Leaked on purpose: tensors in static objects may be freed after main returns.
  static std::once_flag once[kMax];
  static CudaCachingAllocator* allocators[kMax] = {};
  std::call_once(once[index], [index] { allocators[index] = new CudaCachingAllocator(index); });
  return *allocators[index];
}

}  // namespace oar
