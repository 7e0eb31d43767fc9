// CUDA kernel for sum over dims (the cpu::sum contract): out is contiguous with the reduced dims
// kept as size 1; floating sums accumulate in double and integer sums in int64, as on the CPU.
#include "engine/ops/cuda/loops.cuh"

namespace oar::cuda {

namespace {

// One group of G threads (a warp, or a whole block) per output element.
template <typename T, typename Tout, typename Acc, int G>
__global__ void sum_kernel(int64_t outer, int64_t inner, Indexer<1> oix, Indexer<1> iix,
                           const char* x, char* out) {
  __shared__ Acc partial[kThreads / 32];
  const int lane = threadIdx.x % G;
  const int64_t group = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / G;
  const int64_t groups = static_cast<int64_t>(gridDim.x) * blockDim.x / G;
  for (int64_t o = group; o < outer; o += groups) {  // uniform within a group
    int64_t ob;
    oix.offsets(o, &ob);
    Acc acc = 0;
    for (int64_t j = lane; j < inner; j += G) {
      int64_t ib;
      iix.offsets(j, &ib);
      acc += static_cast<Acc>(load<T>(x + ob + ib));
    }
    for (int s = 16; s > 0; s >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, s);
    if constexpr (G > 32) {
      if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = acc;
      __syncthreads();
      if (threadIdx.x < 32) {
        acc = threadIdx.x < G / 32 ? partial[threadIdx.x] : Acc(0);
        for (int s = 16; s > 0; s >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, s);
      }
      __syncthreads();
    }
    if (lane == 0) store<Tout>(out + o * static_cast<int64_t>(sizeof(Tout)), acc);
  }
}

template <typename T, typename Tout, typename Acc>
void sum_typed(const Tensor& out, const Tensor& x, const Indexer<1>& oix, const Indexer<1>& iix,
               int64_t outer, int64_t inner) {
  const Device dev = x.device();
  DeviceGuard g(dev.index);
  const char* src = static_cast<const char*>(x.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  if (inner >= 4096 && outer <= 4096) {  // long rows: a block per row
    const int blocks = static_cast<int>(std::min<int64_t>(outer, 1 << 16));
    sum_kernel<T, Tout, Acc, kThreads>
        <<<blocks, kThreads, 0, stream_of(dev)>>>(outer, inner, oix, iix, src, dst);
  } else {  // a warp per row
    const int blocks = static_cast<int>(std::min<int64_t>((outer + 7) / 8, 1 << 16));
    sum_kernel<T, Tout, Acc, 32>
        <<<blocks, kThreads, 0, stream_of(dev)>>>(outer, inner, oix, iix, src, dst);
  }
  OAR_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void sum(const Tensor& out, const Tensor& x, const std::vector<int64_t>& dims) {
  const int64_t rank = x.dim();
  std::vector<bool> red(rank, false);
  for (int64_t d : dims) red[d] = true;
  Shape outer_shape, inner_shape;
  std::vector<int64_t> outer_st, inner_st;
  const int64_t es = static_cast<int64_t>(dtype_size(x.dtype()));
  for (int64_t d = 0; d < rank; ++d) {
    (red[d] ? inner_shape : outer_shape).push_back(x.size(d));
    (red[d] ? inner_st : outer_st).push_back(x.stride(d) * es);
  }
  const int64_t outer = shape_numel(outer_shape), inner = shape_numel(inner_shape);
  if (outer == 0) return;
  if (inner == 0) {
    out.detach().fill_(0.0);
    return;
  }
  const Indexer<1> oix = make_indexer<1>(outer_shape, {outer_st});
  const Indexer<1> iix = make_indexer<1>(inner_shape, {inner_st});
  switch (x.dtype()) {
    case DType::f32:
      return sum_typed<float, float, double>(out, x, oix, iix, outer, inner);
    case DType::bf16:
      return sum_typed<bf16, bf16, double>(out, x, oix, iix, outer, inner);
    case DType::f16:
      return sum_typed<f16, f16, double>(out, x, oix, iix, outer, inner);
    default:
      break;
  }
  OAR_CHECK(out.dtype() == DType::i64, "sum: integer sums accumulate in i64");
  switch (x.dtype()) {
    case DType::i64:
      return sum_typed<int64_t, int64_t, int64_t>(out, x, oix, iix, outer, inner);
    case DType::i32:
      return sum_typed<int32_t, int64_t, int64_t>(out, x, oix, iix, outer, inner);
    case DType::u8:
      return sum_typed<uint8_t, int64_t, int64_t>(out, x, oix, iix, outer, inner);
    case DType::boolean:
      return sum_typed<bool, int64_t, int64_t>(out, x, oix, iix, outer, inner);
    default:
      OAR_FAIL("sum: unexpected dtype ", dtype_name(x.dtype()));
  }
}

}  // namespace oar::cuda
