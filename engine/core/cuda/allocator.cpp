// The caching allocators for GPU memory and for pinned host memory (one implementation): freed
// blocks go to per-size free lists and are reused, so a training step reaches cudaMalloc (which
// synchronises the device) and cudaHostAlloc (slow) only in its first iterations.
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
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

// The one caching scheme for CUDA memory, device or pinned host: blocks are rounded up
// (round_size), freed blocks go to per-size free lists and are reused, and when the runtime runs
// out, the cache is released and the allocation tried once more. What differs between the two
// kinds is only how a block is obtained and returned, and how a failure is worded.
class CachingAllocator final : public Allocator {
 public:
  struct Backend {
    cudaError_t (*alloc)(void** p, size_t nbytes, int index);
    void (*release)(void* p, int index);  // may wait for the device (cudaFree does)
    int index;                            // the device (-1: host memory)
    std::string what;                     // the memory in error messages: "cuda:0", "pinned host"
  };
  explicit CachingAllocator(Backend b) : b_(std::move(b)) {}

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
      cudaError_t e = b_.alloc(&p, sz, b_.index);
      if (e == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        release_all_locked();
        e = b_.alloc(&p, sz, b_.index);
      }
      if (e != cudaSuccess) {
        cudaGetLastError();
        OAR_FAIL("out of ", b_.what, " memory allocating ", sz, " bytes (", stats_.current_bytes,
                 " bytes in use by tensors, peak ", stats_.peak_bytes,
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
  void release_all_locked() {
    for (auto& [sz, v] : free_) {
      for (void* p : v) b_.release(p, b_.index);
      stats_.cached_bytes -= static_cast<int64_t>(sz * v.size());
    }
    free_.clear();
  }

  Backend b_;
  mutable std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;
  MemoryStats stats_;
};

// Device memory. cudaFree waits for the device, so queued kernels using a cached block finish
// before it is released. Blocks are reused in the order of the device's stream (see runtime.h).
cudaError_t device_alloc(void** p, size_t nbytes, int index) {
  cuda::DeviceGuard g(index);
  return cudaMalloc(p, nbytes);
}
void device_release(void* p, int index) {
  cuda::DeviceGuard g(index);
  cudaFree(p);
}

// Pinned host memory. A block is handed back only when its tensor dies; the staging code that
// owns the tensor keeps it alive until the copy reading it has finished.
cudaError_t host_alloc(void** p, size_t nbytes, int) {
  return cudaHostAlloc(p, nbytes, cudaHostAllocDefault);
}
void host_release(void* p, int) {
  cudaFreeHost(p);
}

}  // namespace

namespace cuda {

Allocator& pinned_allocator() {
  // Leaked: tensors may die after main returns.
  static auto* a = new CachingAllocator({host_alloc, host_release, -1, "pinned host"});
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
  static CachingAllocator* allocators[kMax] = {};
  std::call_once(once[index], [index] {
    allocators[index] = new CachingAllocator(
        {device_alloc, device_release, index, "cuda:" + std::to_string(index)});
  });
  return *allocators[index];
}

}  // namespace oar
