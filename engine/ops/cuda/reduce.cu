// CUDA kernel for sum over dims (the cpu::sum contract): out is contiguous with the reduced dims
// kept as size 1; floating sums accumulate in double and integer sums in int64, as on the CPU.
// Two layouts, each deterministic (fixed summation order):
//  - rows (the reduced dims hold x's innermost stride, or no layout is coalesced either way): a
//    warp per output, or for long rows a block per output; when few outputs have long rows (a
//    conv bias gradient: C outputs of N*H*W elements) each row is split into chunks whose partial
//    sums a second kernel adds in chunk order, so the whole GPU works;
//  - columns (the kept dims hold x's innermost stride: a linear layer's bias gradient, [M, K]
//    summed over M): blocks of 32 consecutive outputs x 8 walkers read whole cache lines, each
//    block summing one chunk of the reduced elements; partials [chunks, outer] are then added in
//    chunk order (no second pass when one chunk covers everything).
#include "engine/ops/cuda/loops.cuh"

namespace oar::cuda {

namespace {

// One group of G threads (a warp, or a whole block) per (output, chunk) work item, chunks of
// `per_chunk` reduced elements; with `part` the item's sum goes to part[chunk * outer + o],
// otherwise (one chunk) to out[o].
template <typename T, typename Tout, typename Acc, int G>
__global__ void sum_kernel(int64_t outer, int64_t inner, int64_t chunks, int64_t per_chunk,
                           Indexer<1> oix, Indexer<1> iix, const char* x, char* out, Acc* part) {
  __shared__ Acc partial[kThreads / 32];
  const int lane = threadIdx.x % G;
  const int64_t group = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / G;
  const int64_t groups = static_cast<int64_t>(gridDim.x) * blockDim.x / G;
  const int64_t items = outer * chunks;
  for (int64_t w = group; w < items; w += groups) {  // uniform within a group
    const int64_t o = w / chunks, chunk = w % chunks;
    int64_t ob;
    oix.offsets(o, &ob);
    const int64_t j0 = chunk * per_chunk;
    const int64_t j1 = j0 + per_chunk < inner ? j0 + per_chunk : inner;
    Acc acc = 0;
    for (int64_t j = j0 + lane; j < j1; j += G) {
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
    if (lane == 0) {
      if (part)
        part[chunk * outer + o] = acc;
      else
        store<Tout>(out + o * static_cast<int64_t>(sizeof(Tout)), acc);
    }
  }
}

constexpr int kCols = 32, kWalkers = 8;

// Column layout: block (tile of kCols outputs, chunk); walker ty sums reduced elements
// j0 + ty, j0 + ty + kWalkers, ... of its output; the walkers are added in order.
template <typename T, typename Tout, typename Acc>
__global__ void sum_cols_kernel(int64_t outer, int64_t inner, int64_t per_chunk, Indexer<1> oix,
                                Indexer<1> iix, const char* x, char* out, Acc* part) {
  __shared__ Acc sh[kWalkers][kCols];
  const int tx = threadIdx.x % kCols, ty = threadIdx.x / kCols;
  const int64_t o = static_cast<int64_t>(blockIdx.x) * kCols + tx;
  const int64_t chunk = blockIdx.y;
  const int64_t j0 = chunk * per_chunk;
  const int64_t j1 = j0 + per_chunk < inner ? j0 + per_chunk : inner;
  Acc acc = 0;
  if (o < outer) {
    int64_t ob;
    oix.offsets(o, &ob);
    for (int64_t j = j0 + ty; j < j1; j += kWalkers) {
      int64_t ib;
      iix.offsets(j, &ib);
      acc += static_cast<Acc>(load<T>(x + ob + ib));
    }
  }
  sh[ty][tx] = acc;
  __syncthreads();
  if (ty == 0 && o < outer) {
    for (int t = 1; t < kWalkers; ++t) acc += sh[t][tx];
    if (part)
      part[chunk * outer + o] = acc;
    else
      store<Tout>(out + o * static_cast<int64_t>(sizeof(Tout)), acc);
  }
}

// out[o] = sum over chunks of part[chunk * outer + o], in chunk order.
template <typename Tout, typename Acc>
__global__ void sum_chunks_kernel(int64_t outer, int64_t chunks, const Acc* part, char* out) {
  for (int64_t o = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; o < outer;
       o += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    Acc acc = 0;
    for (int64_t q = 0; q < chunks; ++q) acc += part[q * outer + o];
    store<Tout>(out + o * static_cast<int64_t>(sizeof(Tout)), acc);
  }
}

// Blocks the split layouts aim for (a few waves of a large GPU).
constexpr int64_t kTargetBlocks = 1024;

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

template <typename T, typename Tout, typename Acc>
void sum_typed(const Tensor& out, const Tensor& x, const Indexer<1>& oix, const Indexer<1>& iix,
               int64_t outer, int64_t inner) {
  static_assert(sizeof(Acc) == 8, "partials live in an i64 buffer");
  const Device dev = x.device();
  DeviceGuard g(dev.index);
  cudaStream_t stream = stream_of(dev);
  const char* src = static_cast<const char*>(x.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  const int64_t es = static_cast<int64_t>(sizeof(T));
  const bool outer_unit = oix.nd >= 1 && oix.strides[oix.nd - 1][0] == es;
  const bool inner_unit = iix.nd >= 1 && iix.strides[iix.nd - 1][0] == es;
  auto partials = [&](int64_t chunks) {
    return chunks > 1 ? empty({chunks * outer}, DType::i64, dev) : Tensor();
  };
  auto pptr = [](const Tensor& t) {
    return t.defined() ? static_cast<Acc*>(t.raw_data()) : static_cast<Acc*>(nullptr);
  };
  if (outer_unit && !inner_unit) {  // columns
    const int64_t tiles = ceil_div(outer, kCols);
    const int64_t chunks = std::max<int64_t>(
        1, std::min<int64_t>({ceil_div(inner, 64), ceil_div(kTargetBlocks, tiles), 65535}));
    const int64_t per_chunk = ceil_div(inner, chunks);
    OAR_CHECK(tiles <= INT32_MAX, "sum: ", outer, " outputs");
    const Tensor part = partials(chunks);
    sum_cols_kernel<T, Tout, Acc>
        <<<dim3(static_cast<unsigned>(tiles), static_cast<unsigned>(chunks)), kCols * kWalkers, 0,
           stream>>>(outer, inner, per_chunk, oix, iix, src, dst, pptr(part));
    if (chunks > 1)
      sum_chunks_kernel<Tout, Acc>
          <<<grid_for(outer), kThreads, 0, stream>>>(outer, chunks, pptr(part), dst);
  } else if (inner >= 4096 && outer <= 4096) {  // long rows: a block per row (or row chunk)
    const int64_t chunks =
        std::max<int64_t>(1, std::min(ceil_div(inner, 4096), ceil_div(kTargetBlocks, outer)));
    const int64_t per_chunk = ceil_div(inner, chunks);
    const Tensor part = partials(chunks);
    const int blocks = static_cast<int>(std::min<int64_t>(outer * chunks, 1 << 16));
    sum_kernel<T, Tout, Acc, kThreads><<<blocks, kThreads, 0, stream>>>(
        outer, inner, chunks, per_chunk, oix, iix, src, dst, pptr(part));
    if (chunks > 1)
      sum_chunks_kernel<Tout, Acc>
          <<<grid_for(outer), kThreads, 0, stream>>>(outer, chunks, pptr(part), dst);
  } else {  // a warp per row
    const int blocks = static_cast<int>(std::min<int64_t>((outer + 7) / 8, 1 << 16));
    sum_kernel<T, Tout, Acc, 32>
        <<<blocks, kThreads, 0, stream>>>(outer, inner, 1, inner, oix, iix, src, dst, nullptr);
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
