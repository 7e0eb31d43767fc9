// CUDA one_hot (the cpu::one_hot contract): out is zeroed, then a thread per index writes its 1.
// Indices outside [0, num_classes) are found on the device (the first bad position, by atomicMin)
// and reported with one small copy back, naming the index and its position as on the CPU.
#include "engine/ops/cuda/loops.cuh"

namespace oar::cuda {

namespace {

template <typename T>
__global__ void one_hot_kernel(int64_t n, int64_t classes, const int64_t* idx, char* out,
                               unsigned long long* first_bad) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t v = idx[i];
    if (v < 0 || v >= classes) {
      atomicMin(first_bad, static_cast<unsigned long long>(i));
      continue;
    }
    store<T>(out + (i * classes + v) * static_cast<int64_t>(sizeof(T)), 1.0f);
  }
}

}  // namespace

void one_hot(const Tensor& out, const Tensor& indices, int64_t num_classes) {
  Tensor o = out;
  o.zero_();
  const int64_t n = indices.numel();
  if (n == 0) return;
  const Device dev = out.device();
  // No bad position: 2^62 (exact in the double that full takes, above any index count).
  Tensor bad = full({1}, static_cast<double>(int64_t{1} << 62), DType::i64, dev);
  {
    DeviceGuard guard(dev.index);
    OAR_DTYPE_SWITCH(out.dtype(), {
      one_hot_kernel<T><<<grid_for(n), kThreads, 0, stream_of(dev)>>>(
          n, num_classes, static_cast<const int64_t*>(indices.raw_data()),
          static_cast<char*>(out.raw_data()), static_cast<unsigned long long*>(bad.raw_data()));
    });
    OAR_CUDA_CHECK(cudaGetLastError());
  }
  const int64_t pos = bad.to(Device::cpu()).to_vector<int64_t>()[0];
  if (pos < n) {
    const int64_t v =
        indices.reshape({n}).narrow(0, pos, 1).to(Device::cpu()).to_vector<int64_t>()[0];
    OAR_FAIL("one_hot: index ", v, " at position ", pos, " is outside [0, ", num_classes, ")");
  }
}

}  // namespace oar::cuda
