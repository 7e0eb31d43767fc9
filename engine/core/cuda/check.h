#pragma once
// Internal to the CUDA backend: error checks, the current stream and device guards. Includes the
// CUDA runtime API header, so only engine/**/cuda/ files include it.
#include <cuda_runtime_api.h>

#include "engine/core/context.h"
#include "engine/core/error.h"

#define OAR_CUDA_CHECK(expr)                                           \
  do {                                                                 \
    const cudaError_t oar_cuda_err_ = (expr);                          \
    if (oar_cuda_err_ != cudaSuccess)                                  \
      OAR_FAIL("CUDA error in ", #expr, " (", __FILE__, ":", __LINE__, \
               "): ", cudaGetErrorString(oar_cuda_err_));              \
  } while (0)

namespace oar::cuda {

inline cudaStream_t stream_of(Device d) {
  return static_cast<cudaStream_t>(context_for(d).stream);
}

// Makes `index` the current device for the guard's lifetime.
class DeviceGuard {
 public:
  explicit DeviceGuard(int index) {
    OAR_CUDA_CHECK(cudaGetDevice(&prev_));
    if (prev_ != index) OAR_CUDA_CHECK(cudaSetDevice(index));
    cur_ = index;
  }
  ~DeviceGuard() {
    if (prev_ != cur_) cudaSetDevice(prev_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int prev_ = 0, cur_ = 0;
};

}  // namespace oar::cuda
