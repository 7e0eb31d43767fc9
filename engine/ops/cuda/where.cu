// CUDA where (the cpu::where contract): out = cond ? a : b with all three broadcast to out.
#include "engine/ops/cuda/loops.cuh"

namespace oar::cuda {

namespace {
template <typename T>
struct WhereOp {
  __device__ __forceinline__ void operator()(Ptrs<4> p) const {
    *reinterpret_cast<T*>(p.p[0]) = *reinterpret_cast<const bool*>(p.p[1])
                                        ? *reinterpret_cast<const T*>(p.p[2])
                                        : *reinterpret_cast<const T*>(p.p[3]);
  }
};
}  // namespace

void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  const std::array<char*, 4> base{
      static_cast<char*>(out.raw_data()), static_cast<char*>(cond.raw_data()),
      static_cast<char*>(a.raw_data()), static_cast<char*>(b.raw_data())};
  const std::array<std::vector<int64_t>, 4> st{
      byte_strides(out), broadcast_byte_strides(cond, out.shape()),
      broadcast_byte_strides(a, out.shape()), broadcast_byte_strides(b, out.shape())};
  OAR_DTYPE_SWITCH(out.dtype(), launch<4>(out.device(), out.shape(), base, st, WhereOp<T>{}));
}

}  // namespace oar::cuda
