#include "engine/core/cuda/runtime.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "engine/core/cuda/check.h"

namespace oar {

bool cuda_available() {
  return cuda::device_count() > 0;
}

namespace cuda {

int device_count() {
  static const int n = [] {
    int c = 0;
    if (cudaGetDeviceCount(&c) != cudaSuccess) {
      cudaGetLastError();  // clear the sticky "no device" / "no driver" error
      return 0;
    }
    return c;
  }();
  return n;
}

void* default_stream(int index) {
  constexpr int kMax = 16;
  static std::once_flag once[kMax];
  static cudaStream_t streams[kMax] = {};
  const int n = device_count();
  OAR_CHECK(n > 0, "device cuda:", index, " is not available: no CUDA device is visible");
  OAR_CHECK(index >= 0 && index < n && index < kMax, "device cuda:", index,
            " is not available: ", n, " CUDA device(s) visible (cuda:0..cuda:", n - 1, ")");
  std::call_once(once[index], [index] {
    DeviceGuard g(index);
    OAR_CUDA_CHECK(cudaStreamCreateWithFlags(&streams[index], cudaStreamNonBlocking));
  });
  return streams[index];
}

namespace {
std::atomic<bool>& tf32_flag() {
  static std::atomic<bool> flag{[] {
    const char* v = std::getenv("OAR_ALLOW_TF32");
    return v != nullptr && std::strcmp(v, "1") == 0;
  }()};
  return flag;
}
}  // namespace

bool allow_tf32() {
  return tf32_flag().load(std::memory_order_relaxed);
}
void set_allow_tf32(bool allow) {
  tf32_flag().store(allow, std::memory_order_relaxed);
}

void synchronize(Device d) {
  OAR_CHECK(d.is_cuda(), "cuda::synchronize on ", d.str());
  DeviceGuard g(d.index);
  OAR_CUDA_CHECK(cudaStreamSynchronize(stream_of(d)));
}

Event::Event(bool timing) : timing_(timing) {}

Event::~Event() {
  if (event_) cudaEventDestroy(static_cast<cudaEvent_t>(event_));
}

void Event::record(Device d) {
  OAR_CHECK(d.is_cuda(), "Event::record on ", d.str());
  DeviceGuard g(d.index);
  if (event_ && device_ != d.index) {
    cudaEventDestroy(static_cast<cudaEvent_t>(event_));
    event_ = nullptr;
  }
  if (!event_) {
    cudaEvent_t e;
    OAR_CUDA_CHECK(
        cudaEventCreateWithFlags(&e, timing_ ? cudaEventDefault : cudaEventDisableTiming));
    event_ = e;
    device_ = d.index;
  }
  OAR_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(event_), stream_of(d)));
}

void Event::record_on(void* stream, int index) {
  DeviceGuard g(index);
  if (event_ && device_ != index) {
    cudaEventDestroy(static_cast<cudaEvent_t>(event_));
    event_ = nullptr;
  }
  if (!event_) {
    cudaEvent_t e;
    OAR_CUDA_CHECK(
        cudaEventCreateWithFlags(&e, timing_ ? cudaEventDefault : cudaEventDisableTiming));
    event_ = e;
    device_ = index;
  }
  OAR_CUDA_CHECK(
      cudaEventRecord(static_cast<cudaEvent_t>(event_), static_cast<cudaStream_t>(stream)));
}

void Event::block_stream(void* stream) const {
  if (!event_) return;
  OAR_CUDA_CHECK(
      cudaStreamWaitEvent(static_cast<cudaStream_t>(stream), static_cast<cudaEvent_t>(event_), 0));
}

void Event::block(Device d) const {
  if (!event_) return;
  DeviceGuard g(d.index);
  OAR_CUDA_CHECK(cudaStreamWaitEvent(stream_of(d), static_cast<cudaEvent_t>(event_), 0));
}

void Event::synchronize() const {
  if (event_) OAR_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(event_)));
}

bool Event::done() const {
  if (!event_) return true;
  const cudaError_t e = cudaEventQuery(static_cast<cudaEvent_t>(event_));
  if (e == cudaErrorNotReady) return false;
  OAR_CUDA_CHECK(e);
  return true;
}

float Event::elapsed_ms(const Event& end) const {
  OAR_CHECK(timing_ && end.timing_ && event_ && end.event_,
            "Event::elapsed_ms needs two recorded events created with timing = true");
  float ms = 0;
  OAR_CUDA_CHECK(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(event_),
                                      static_cast<cudaEvent_t>(end.event_)));
  return ms;
}

void* alloc_pinned(size_t nbytes) {
  void* p = nullptr;
  OAR_CUDA_CHECK(cudaHostAlloc(&p, nbytes == 0 ? 1 : nbytes, cudaHostAllocDefault));
  return p;
}

void free_pinned(void* p) {
  if (p) cudaFreeHost(p);  // runs in deleters: never throws
}

bool is_pinned(const void* p) {
  if (p == nullptr) return false;
  cudaPointerAttributes a{};
  if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return a.type == cudaMemoryTypeHost;
}

void* copy_stream(int index) {
  constexpr int kMax = 16;
  static std::once_flag once[kMax];
  static cudaStream_t streams[kMax] = {};
  default_stream(index);  // checks the index with the usual message
  std::call_once(once[index], [index] {
    DeviceGuard g(index);
    OAR_CUDA_CHECK(cudaStreamCreateWithFlags(&streams[index], cudaStreamNonBlocking));
  });
  return streams[index];
}

void memcpy_to_device_async(void* dst, const void* src, size_t nbytes, int index, void* stream) {
  if (nbytes == 0) return;
  DeviceGuard g(index);
  OAR_CUDA_CHECK(
      cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyHostToDevice, static_cast<cudaStream_t>(stream)));
}

}  // namespace cuda
}  // namespace oar
