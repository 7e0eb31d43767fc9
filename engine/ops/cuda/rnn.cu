// CUDA LSTM / GRU layers (the cpu/rnn.cpp contract: time-major f32, the same saved buffers and
// the same variable-length rule: row n at step s works on time s, or len_n - 1 - s in reverse).
// The input projection of the whole sequence is one cuBLAS GEMM; each step is one recurrent
// GEMM [N, H] x W_hh^T followed by one fused pointwise kernel (a thread per (row, hidden unit))
// for the gates, the cell and the saved buffers. Backward mirrors it: a pointwise kernel per
// step writes the gate gradients and a GEMM adds W_hh^T's share into dh; the weight gradients
// are three GEMMs over the whole sequence and the bias gradients column sums in double.
#include "engine/core/generator.h"
#include "engine/ops/cuda/blas.h"
#include "engine/ops/cuda/loops.cuh"
#include "engine/ops/rnn.h"

namespace oar {
enum class RnnCell { lstm, gru };

namespace cuda {

namespace {

// Row-major C [m, n] = alpha op(A) [m, k] op(B) [k, n] + beta C (f32), as cuBLAS's column-major
// C^T = op(B)^T op(A)^T.
void rm_gemm(Device dev, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
             const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
             int64_t ldc) {
  gemm(dev, DType::f32, DType::f32, tb, ta, n, m, k, alpha, b, ldb, 0, a, lda, 0, beta, c, ldc, 0,
       1);
}

__device__ __forceinline__ int64_t time_of(bool reverse, int64_t s, int64_t len) {
  if (s >= len) return -1;
  return reverse ? len - 1 - s : s;
}

__device__ __forceinline__ float sigmoidf(float x) {
  return 1.0f / (1.0f + expf(-x));
}

__device__ __forceinline__ int64_t len_of(const int64_t* lens, int64_t n, int64_t T) {
  return lens ? lens[n] : T;
}

// gates[r, j] += b_ih[j] (+ b_hh[j] for the LSTM).
__global__ void add_bias_kernel(int64_t rows, int64_t gh, const float* b1, const float* b2,
                                float* gates) {
  const int64_t total = rows * gh;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t j = i % gh;
    gates[i] += (b1 ? b1[j] : 0.0f) + (b2 ? b2[j] : 0.0f);
  }
}

// y[t, n, :] = 0 for t >= len[n].
__global__ void zero_padded_kernel(int64_t T, int64_t N, int64_t H, const int64_t* lens, float* y,
                                   int64_t ys0, int64_t ys1) {
  const int64_t total = T * N * H;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t j = i % H, n = (i / H) % N, t = i / (N * H);
    if (t >= len_of(lens, n, T)) y[t * ys0 + n * ys1 + j] = 0.0f;
  }
}

struct StepArgs {
  int64_t T, N, H, s;
  bool reverse;
  const int64_t* lens;
  float* gates;     // [T, N, G*H]
  const float* hw;  // [N, G*H]: h_prev W_hh^T
  const float* hin;
  float* hout;
  float* c;          // LSTM cell [N, H] (updated in place)
  float* s1;         // saved (or null): LSTM c, GRU W_hn h + b_hn
  float* s2;         // h_prev
  float* s3;         // LSTM c_prev
  const float* bhh;  // GRU only
  float* y;
  int64_t ys0, ys1;
};

__global__ void lstm_step_kernel(StepArgs a) {
  const int64_t total = a.N * a.H, H = a.H, GH = 4 * a.H;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t n = i / H, j = i % H;
    const float hi = a.hin[i];
    const int64_t t = time_of(a.reverse, a.s, len_of(a.lens, n, a.T));
    if (t < 0) {
      a.hout[i] = hi;
      continue;
    }
    float* g = a.gates + (t * a.N + n) * GH;
    const float* r = a.hw + n * GH;
    const int64_t o = (t * a.N + n) * H + j;
    const float cp = a.c[i];
    if (a.s2) {
      a.s2[o] = hi;
      a.s3[o] = cp;
    }
    const float ig = sigmoidf(g[j] + r[j]);
    const float fg = sigmoidf(g[H + j] + r[H + j]);
    const float gg = tanhf(g[2 * H + j] + r[2 * H + j]);
    const float og = sigmoidf(g[3 * H + j] + r[3 * H + j]);
    g[j] = ig;
    g[H + j] = fg;
    g[2 * H + j] = gg;
    g[3 * H + j] = og;
    const float cn = fg * cp + ig * gg;
    const float h = og * tanhf(cn);
    a.c[i] = cn;
    a.hout[i] = h;
    if (a.s1) a.s1[o] = cn;
    a.y[t * a.ys0 + n * a.ys1 + j] = h;
  }
}

__global__ void gru_step_kernel(StepArgs a) {
  const int64_t total = a.N * a.H, H = a.H, GH = 3 * a.H;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t n = i / H, j = i % H;
    const float hi = a.hin[i];
    const int64_t t = time_of(a.reverse, a.s, len_of(a.lens, n, a.T));
    if (t < 0) {
      a.hout[i] = hi;
      continue;
    }
    float* g = a.gates + (t * a.N + n) * GH;
    const float* r = a.hw + n * GH;
    const int64_t o = (t * a.N + n) * H + j;
    if (a.s2) a.s2[o] = hi;
    const float r0 = r[j] + (a.bhh ? a.bhh[j] : 0.0f);
    const float r1 = r[H + j] + (a.bhh ? a.bhh[H + j] : 0.0f);
    const float r2 = r[2 * H + j] + (a.bhh ? a.bhh[2 * H + j] : 0.0f);
    const float rg = sigmoidf(g[j] + r0);
    const float zg = sigmoidf(g[H + j] + r1);
    const float ng = tanhf(g[2 * H + j] + rg * r2);
    g[j] = rg;
    g[H + j] = zg;
    g[2 * H + j] = ng;
    const float h = (1.0f - zg) * ng + zg * hi;
    if (a.s1) a.s1[o] = r2;
    a.hout[i] = h;
    a.y[t * a.ys0 + n * a.ys1 + j] = h;
  }
}

struct BackArgs {
  int64_t T, N, H, s;
  bool reverse;
  const int64_t* lens;
  const float* gates;
  const float* s1;
  const float* hprev;
  const float* cprev;
  const float* dy;
  int64_t ds0, ds1;
  float* dh;   // [N, H]
  float* dc;   // [N, H] (LSTM)
  float* dgx;  // [T, N, G*H]
  float* dgh;  // GRU: [T, N, G*H]
  float* sg;   // [N, G*H]: this step's hidden-side gate gradients
};

__global__ void lstm_back_kernel(BackArgs a) {
  const int64_t total = a.N * a.H, H = a.H, GH = 4 * a.H;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t n = i / H, j = i % H;
    float* sg = a.sg + n * GH + j;
    const int64_t t = time_of(a.reverse, a.s, len_of(a.lens, n, a.T));
    if (t < 0) {
      for (int k = 0; k < 4; ++k) sg[k * H] = 0.0f;
      continue;
    }
    const float* g = a.gates + (t * a.N + n) * GH + j;
    float* gx = a.dgx + (t * a.N + n) * GH + j;
    const int64_t o = (t * a.N + n) * H + j;
    const float ig = g[0], fg = g[H], gg = g[2 * H], og = g[3 * H];
    const float tc = tanhf(a.s1[o]);
    const float dht = a.dh[i] + a.dy[t * a.ds0 + n * a.ds1 + j];
    const float dct = a.dc[i] + dht * og * (1.0f - tc * tc);
    gx[0] = dct * gg * ig * (1.0f - ig);
    gx[H] = dct * a.cprev[o] * fg * (1.0f - fg);
    gx[2 * H] = dct * ig * (1.0f - gg * gg);
    gx[3 * H] = dht * tc * og * (1.0f - og);
    a.dc[i] = dct * fg;
    for (int k = 0; k < 4; ++k) sg[k * H] = gx[k * H];
    a.dh[i] = 0.0f;  // replaced by W_hh^T's share (the GEMM adds into it)
  }
}

__global__ void gru_back_kernel(BackArgs a) {
  const int64_t total = a.N * a.H, H = a.H, GH = 3 * a.H;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t n = i / H, j = i % H;
    float* sg = a.sg + n * GH + j;
    const int64_t t = time_of(a.reverse, a.s, len_of(a.lens, n, a.T));
    if (t < 0) {
      for (int k = 0; k < 3; ++k) sg[k * H] = 0.0f;
      continue;
    }
    const float* g = a.gates + (t * a.N + n) * GH + j;
    float* gx = a.dgx + (t * a.N + n) * GH + j;
    float* gh = a.dgh + (t * a.N + n) * GH + j;
    const int64_t o = (t * a.N + n) * H + j;
    const float rg = g[0], zg = g[H], ng = g[2 * H];
    const float dht = a.dh[i] + a.dy[t * a.ds0 + n * a.ds1 + j];
    const float dpn = dht * (1.0f - zg) * (1.0f - ng * ng);
    const float dpz = dht * (a.hprev[o] - ng) * zg * (1.0f - zg);
    const float dpr = dpn * a.s1[o] * rg * (1.0f - rg);
    gx[0] = dpr;
    gx[H] = dpz;
    gx[2 * H] = dpn;
    gh[0] = dpr;
    gh[H] = dpz;
    gh[2 * H] = dpn * rg;
    sg[0] = dpr;
    sg[H] = dpz;
    sg[2 * H] = dpn * rg;
    a.dh[i] = dht * zg;  // the direct path; the recurrent GEMM adds the rest
  }
}

// out[j] = sum over rows of m[r, j] (in double, rows in order).
__global__ void column_sums_kernel(int64_t rows, int64_t cols, const float* m, float* out) {
  for (int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; j < cols;
       j += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    double s = 0;
    for (int64_t r = 0; r < rows; ++r) s += m[r * cols + j];
    out[j] = static_cast<float>(s);
  }
}

__global__ void rnn_mask_kernel(int64_t n, uint64_t seed, uint64_t base, float p, float scale,
                                float* m) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    m[i] = Generator::to_unit_float(Generator::hash(seed, base + static_cast<uint64_t>(i))) >= p
               ? scale
               : 0.0f;
}

const float* cf(const Tensor& t) {
  return t.defined() ? static_cast<const float*>(t.raw_data()) : nullptr;
}
float* mf(const Tensor& t) {
  return t.defined() ? static_cast<float*>(t.raw_data()) : nullptr;
}

// The number of steps (the longest sequence) and the device lengths (null: all T).
int64_t steps_of(const Tensor& lengths, int64_t T) {
  if (!lengths.defined()) return T;
  int64_t steps = 0;
  for (int64_t v : lengths.to(Device::cpu()).to_vector<int64_t>()) steps = std::max(steps, v);
  return steps;
}

const int64_t* lens_ptr(const Tensor& lengths) {
  return lengths.defined() ? static_cast<const int64_t*>(lengths.raw_data()) : nullptr;
}

void copy_into(const Tensor& dst, const Tensor& src) {
  Tensor d = dst;
  d.copy_(src);
}

}  // namespace

void rnn_layer_forward(RnnCell cell, bool reverse, const Tensor& x, const RnnWeights& w,
                       const Tensor& lengths, const Tensor& h0, const Tensor& c0, const Tensor& y,
                       const Tensor& hn, const Tensor& cn, const std::vector<Tensor>& saved) {
  const bool is_lstm = cell == RnnCell::lstm;
  const int64_t T = x.size(0), N = x.size(1), I = x.size(2), H = hn.size(1);
  const int64_t G = is_lstm ? 4 : 3, GH = G * H;
  const Device dev = x.device();
  const Tensor lens = lengths.defined() ? lengths.to(DType::i64).contiguous() : Tensor();
  const int64_t steps = steps_of(lens, T);
  float* gates = mf(saved[0]);
  const bool keep = saved.size() > 1;

  // gates = x W_ih^T + b_ih (+ b_hh for the LSTM).
  rm_gemm(dev, false, true, T * N, GH, I, 1.0f, cf(x), I, cf(w.w_ih), I, 0.0f, gates, GH);
  DeviceGuard guard(dev.index);
  cudaStream_t st = stream_of(dev);
  if (w.b_ih.defined() || (is_lstm && w.b_hh.defined())) {
    add_bias_kernel<<<grid_for(T * N * GH), kThreads, 0, st>>>(
        T * N, GH, cf(w.b_ih), is_lstm ? cf(w.b_hh) : nullptr, gates);
  }
  if (lens.defined())
    zero_padded_kernel<<<grid_for(T * N * H), kThreads, 0, st>>>(T, N, H, lens_ptr(lens), mf(y),
                                                                 y.stride(0), y.stride(1));
  OAR_CUDA_CHECK(cudaGetLastError());

  // h double-buffered [2, N, H]; the LSTM cell updated in place.
  Tensor h = empty({2, N, H}, DType::f32, dev);
  copy_into(h.select(0, 0), h0);
  Tensor c = is_lstm ? c0.clone() : Tensor();
  Tensor hw = empty({N, GH}, DType::f32, dev);
  StepArgs a{};
  a.T = T;
  a.N = N;
  a.H = H;
  a.reverse = reverse;
  a.lens = lens_ptr(lens);
  a.gates = gates;
  a.hw = cf(hw);
  a.c = mf(c);
  a.s1 = keep ? mf(saved[1]) : nullptr;
  a.s2 = keep ? mf(saved[2]) : nullptr;
  a.s3 = keep && is_lstm ? mf(saved[3]) : nullptr;
  a.bhh = is_lstm ? nullptr : cf(w.b_hh);
  a.y = mf(y);
  a.ys0 = y.stride(0);
  a.ys1 = y.stride(1);
  float* hb = mf(h);
  for (int64_t s = 0; s < steps; ++s) {
    a.s = s;
    a.hin = hb + (s % 2) * N * H;
    a.hout = hb + ((s + 1) % 2) * N * H;
    rm_gemm(dev, false, true, N, GH, H, 1.0f, a.hin, H, cf(w.w_hh), H, 0.0f, mf(hw), GH);
    if (is_lstm)
      lstm_step_kernel<<<grid_for(N * H), kThreads, 0, st>>>(a);
    else
      gru_step_kernel<<<grid_for(N * H), kThreads, 0, st>>>(a);
    OAR_CUDA_CHECK(cudaGetLastError());
  }
  copy_into(hn, h.select(0, steps % 2));
  if (is_lstm) copy_into(cn, c);
}

void rnn_layer_backward(RnnCell cell, bool reverse, const Tensor& x, const RnnWeights& w,
                        const Tensor& lengths, const std::vector<Tensor>& saved, const Tensor& dy,
                        const Tensor& dhn, const Tensor& dcn, const Tensor& dx,
                        const RnnWeights& dw, const Tensor& dh0, const Tensor& dc0) {
  const bool is_lstm = cell == RnnCell::lstm;
  const int64_t T = x.size(0), N = x.size(1), I = x.size(2), H = dhn.size(1);
  const int64_t GH = (is_lstm ? 4 : 3) * H;
  const Device dev = x.device();
  const Tensor lens = lengths.defined() ? lengths.to(DType::i64).contiguous() : Tensor();
  const int64_t steps = steps_of(lens, T);

  // dgx: gradient of the gate pre-activations (input side, also b_ih); dgh: the hidden side
  // (W_hh, b_hh), which differs from dgx only for the GRU's n gate. Zeros at padded steps.
  Tensor dgx = zeros({T * N, GH}, DType::f32, dev);
  Tensor dgh_t = is_lstm ? Tensor() : zeros({T * N, GH}, DType::f32, dev);
  const float* dgh = is_lstm ? cf(dgx) : cf(dgh_t);
  Tensor dh = dhn.contiguous().clone();
  Tensor dc = is_lstm ? dcn.contiguous().clone() : Tensor();
  Tensor sg = empty({N, GH}, DType::f32, dev);
  BackArgs a{};
  a.T = T;
  a.N = N;
  a.H = H;
  a.reverse = reverse;
  a.lens = lens_ptr(lens);
  a.gates = cf(saved[0]);
  a.s1 = cf(saved[1]);
  a.hprev = cf(saved[2]);
  a.cprev = is_lstm ? cf(saved[3]) : nullptr;
  a.dy = cf(dy);
  a.ds0 = dy.stride(0);
  a.ds1 = dy.stride(1);
  a.dh = mf(dh);
  a.dc = mf(dc);
  a.dgx = mf(dgx);
  a.dgh = mf(dgh_t);
  a.sg = mf(sg);
  {
    DeviceGuard guard(dev.index);
    cudaStream_t st = stream_of(dev);
    for (int64_t s = steps - 1; s >= 0; --s) {
      a.s = s;
      if (is_lstm)
        lstm_back_kernel<<<grid_for(N * H), kThreads, 0, st>>>(a);
      else
        gru_back_kernel<<<grid_for(N * H), kThreads, 0, st>>>(a);
      OAR_CUDA_CHECK(cudaGetLastError());
      // dh += step gate gradients x W_hh (rows past their length have zero gate gradients).
      rm_gemm(dev, false, false, N, H, GH, 1.0f, cf(sg), GH, cf(w.w_hh), H, 1.0f, mf(dh), H);
    }
  }
  copy_into(dh0, dh);
  if (is_lstm) copy_into(dc0, dc);

  const int64_t rows = T * N;
  if (dx.defined())
    rm_gemm(dev, false, false, rows, I, GH, 1.0f, cf(dgx), GH, cf(w.w_ih), I, 1.0f, mf(dx), I);
  if (dw.w_ih.defined())
    rm_gemm(dev, true, false, GH, I, rows, 1.0f, cf(dgx), GH, cf(x), I, 0.0f, mf(dw.w_ih), I);
  if (dw.w_hh.defined())
    rm_gemm(dev, true, false, GH, H, rows, 1.0f, dgh, GH, cf(saved[2]), H, 0.0f, mf(dw.w_hh), H);
  DeviceGuard guard(dev.index);
  if (dw.b_ih.defined())
    column_sums_kernel<<<grid_for(GH), kThreads, 0, stream_of(dev)>>>(rows, GH, cf(dgx),
                                                                      mf(dw.b_ih));
  if (dw.b_hh.defined())
    column_sums_kernel<<<grid_for(GH), kThreads, 0, stream_of(dev)>>>(rows, GH, dgh, mf(dw.b_hh));
  OAR_CUDA_CHECK(cudaGetLastError());
}

void rnn_dropout_mask(const Tensor& mask, double p, uint64_t seed, uint64_t base) {
  const int64_t n = mask.numel();
  if (n == 0) return;
  const Device dev = mask.device();
  DeviceGuard guard(dev.index);
  rnn_mask_kernel<<<grid_for(n), kThreads, 0, stream_of(dev)>>>(
      n, seed, base, static_cast<float>(p), static_cast<float>(1.0 / (1.0 - p)), mf(mask));
  OAR_CUDA_CHECK(cudaGetLastError());
}

}  // namespace cuda
}  // namespace oar
