// LSTM / GRU on the CPU: the input projection of all time steps is one GEMM, the recurrent
// projection one GEMM per step (oneDNN's sgemm); gates are fused pointwise loops. Variable
// lengths are handled per row: row n at step s works on time t = s (forward) or len_n - 1 - s
// (reverse), so the reverse direction starts at each sequence's last valid step.
#include <dnnl.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/core/error.h"
#include "engine/ops/cpu/fast_exp.h"
#include "engine/ops/rnn.h"

namespace oar {
enum class RnnCell { lstm, gru };

namespace cpu {

namespace {

constexpr int64_t kPointwiseGrain = 4096;  // elements per step below which loops stay serial

// Row-major C = alpha * op(A) op(B) + beta * C.
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  const dnnl_status_t st =
      dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  OAR_CHECK(st == dnnl_success, "rnn: oneDNN sgemm failed (status ", static_cast<int>(st), ")");
}

std::vector<int64_t> lengths_of(const Tensor& lengths, int64_t T, int64_t N) {
  if (!lengths.defined()) return std::vector<int64_t>(N, T);
  const int64_t* p = lengths.data<int64_t>();
  return std::vector<int64_t>(p, p + N);
}

// Time index of row n at processing step s, or -1 when the row has no step s.
inline int64_t time_of(bool reverse, int64_t s, int64_t len) {
  if (s >= len) return -1;
  return reverse ? len - 1 - s : s;
}

const float* opt(const Tensor& t) {
  return t.defined() ? t.data<float>() : nullptr;
}
float* opt_mut(const Tensor& t) {
  return t.defined() ? t.data<float>() : nullptr;
}

}  // namespace

void rnn_layer_forward(RnnCell cell, bool reverse, const Tensor& x, const RnnWeights& w,
                       const Tensor& lengths, const Tensor& h0, const Tensor& c0, const Tensor& y,
                       const Tensor& hn, const Tensor& cn, const std::vector<Tensor>& saved) {
  const bool is_lstm = cell == RnnCell::lstm;
  const int64_t T = x.size(0), N = x.size(1), I = x.size(2), H = hn.size(1);
  const int64_t GH = (is_lstm ? 4 : 3) * H;
  const auto len = lengths_of(lengths, T, N);
  float* gates = saved[0].data<float>();
  const bool keep = saved.size() > 1;
  float* s1 = keep ? saved[1].data<float>() : nullptr;  // LSTM: c;       GRU: W_hn h + b_hn
  float* s2 = keep ? saved[2].data<float>() : nullptr;  // h_prev
  float* s3 = keep && is_lstm ? saved[3].data<float>() : nullptr;  // LSTM: c_prev
  float* py = y.data<float>();
  const int64_t ys0 = y.stride(0), ys1 = y.stride(1);
  const float* bih = opt(w.b_ih);
  const float* bhh = opt(w.b_hh);
  const float* whh = w.w_hh.data<float>();

  // gates = x W_ih^T + b_ih (+ b_hh for the LSTM, whose hidden bias needs no separate term).
  gemm(false, true, T * N, GH, I, 1.0f, x.data<float>(), I, w.w_ih.data<float>(), I, 0.0f, gates,
       GH);
  if (bih || (is_lstm && bhh)) {
    std::vector<float> bias(GH, 0.0f);
    for (int64_t j = 0; j < GH; ++j)
      bias[j] = (bih ? bih[j] : 0.0f) + (is_lstm && bhh ? bhh[j] : 0.0f);
#pragma omp parallel for if (T * N * GH > 4 * kPointwiseGrain)
    for (int64_t r = 0; r < T * N; ++r)
      for (int64_t j = 0; j < GH; ++j) gates[r * GH + j] += bias[j];
  }
  // Padded steps output zeros.
  for (int64_t t = 0; t < T; ++t)
    for (int64_t n = 0; n < N; ++n)
      if (t >= len[n])
        for (int64_t j = 0; j < H; ++j) py[t * ys0 + n * ys1 + j] = 0.0f;

  std::vector<float> h(h0.data<float>(), h0.data<float>() + N * H);
  std::vector<float> c;
  if (is_lstm) c.assign(c0.data<float>(), c0.data<float>() + N * H);
  std::vector<float> hw(N * GH);
  int64_t steps = 0;
  for (int64_t n = 0; n < N; ++n) steps = std::max(steps, len[n]);
  for (int64_t s = 0; s < steps; ++s) {
    gemm(false, true, N, GH, H, 1.0f, h.data(), H, whh, H, 0.0f, hw.data(), GH);
#pragma omp parallel for if (N * GH > kPointwiseGrain)
    for (int64_t n = 0; n < N; ++n) {
      const int64_t t = time_of(reverse, s, len[n]);
      if (t < 0) continue;
      float* __restrict g = gates + (t * N + n) * GH;
      float* __restrict r = hw.data() + n * GH;
      float* __restrict hr = h.data() + n * H;
      float* __restrict out = py + t * ys0 + n * ys1;
      const int64_t o = (t * N + n) * H;
      // Separate simple passes so each loop vectorises.
      if (is_lstm) {
        float* __restrict cr = c.data() + n * H;
        if (keep) {
          std::copy(hr, hr + H, s2 + o);
          std::copy(cr, cr + H, s3 + o);
        }
        for (int64_t j = 0; j < GH; ++j) g[j] += r[j];
        for (int64_t j = 0; j < 2 * H; ++j) g[j] = fast_sigmoid(g[j]);
        for (int64_t j = 2 * H; j < 3 * H; ++j) g[j] = fast_tanh(g[j]);
        for (int64_t j = 3 * H; j < GH; ++j) g[j] = fast_sigmoid(g[j]);
        for (int64_t j = 0; j < H; ++j) cr[j] = g[H + j] * cr[j] + g[j] * g[2 * H + j];
        for (int64_t j = 0; j < H; ++j) hr[j] = g[3 * H + j] * fast_tanh(cr[j]);
        if (keep) std::copy(cr, cr + H, s1 + o);
      } else {
        if (keep) std::copy(hr, hr + H, s2 + o);
        if (bhh)
          for (int64_t j = 0; j < GH; ++j) r[j] += bhh[j];
        for (int64_t j = 0; j < 2 * H; ++j) g[j] = fast_sigmoid(g[j] + r[j]);
        for (int64_t j = 0; j < H; ++j)
          g[2 * H + j] = fast_tanh(g[2 * H + j] + g[j] * r[2 * H + j]);
        for (int64_t j = 0; j < H; ++j) hr[j] = (1.0f - g[H + j]) * g[2 * H + j] + g[H + j] * hr[j];
        if (keep) std::copy(r + 2 * H, r + GH, s1 + o);
      }
      std::copy(hr, hr + H, out);
    }
  }
  std::copy(h.begin(), h.end(), hn.data<float>());
  if (is_lstm) std::copy(c.begin(), c.end(), cn.data<float>());
}

void rnn_layer_backward(RnnCell cell, bool reverse, const Tensor& x, const RnnWeights& w,
                        const Tensor& lengths, const std::vector<Tensor>& saved, const Tensor& dy,
                        const Tensor& dhn, const Tensor& dcn, const Tensor& dx,
                        const RnnWeights& dw, const Tensor& dh0, const Tensor& dc0) {
  const bool is_lstm = cell == RnnCell::lstm;
  const int64_t T = x.size(0), N = x.size(1), I = x.size(2), H = dhn.size(1);
  const int64_t GH = (is_lstm ? 4 : 3) * H;
  const auto len = lengths_of(lengths, T, N);
  const float* gates = saved[0].data<float>();
  const float* s1 = saved[1].data<float>();
  const float* hprev = saved[2].data<float>();
  const float* cprev = is_lstm ? saved[3].data<float>() : nullptr;
  const float* pdy = dy.data<float>();
  const int64_t ds0 = dy.stride(0), ds1 = dy.stride(1);
  const float* whh = w.w_hh.data<float>();

  // dgx: gradient of the gate pre-activations (input side, also b_ih); dgh: the hidden side
  // (W_hh, b_hh), which differs from dgx only for the GRU's n gate (scaled by r).
  std::vector<float> dgx(T * N * GH, 0.0f);
  std::vector<float> dgh_store(is_lstm ? 0 : T * N * GH, 0.0f);
  float* dgh = is_lstm ? dgx.data() : dgh_store.data();
  std::vector<float> dh(dhn.data<float>(), dhn.data<float>() + N * H);
  std::vector<float> dc;
  if (is_lstm) dc.assign(dcn.data<float>(), dcn.data<float>() + N * H);
  std::vector<float> step_g(N * GH), step_h(N * H);
  int64_t steps = 0;
  for (int64_t n = 0; n < N; ++n) steps = std::max(steps, len[n]);
  for (int64_t s = steps - 1; s >= 0; --s) {
#pragma omp parallel for if (N * GH > kPointwiseGrain)
    for (int64_t n = 0; n < N; ++n) {
      const int64_t t = time_of(reverse, s, len[n]);
      float* sg = step_g.data() + n * GH;
      if (t < 0) {
        std::fill(sg, sg + GH, 0.0f);
        continue;
      }
      const float* g = gates + (t * N + n) * GH;
      const int64_t o = (t * N + n) * H;
      float* gx = dgx.data() + (t * N + n) * GH;
      float* dhr = dh.data() + n * H;
      const float* dyr = pdy + t * ds0 + n * ds1;
      if (is_lstm) {
        float* dcr = dc.data() + n * H;
        for (int64_t j = 0; j < H; ++j) {
          const float ig = g[j], fg = g[H + j], gg = g[2 * H + j], og = g[3 * H + j];
          const float tc = fast_tanh(s1[o + j]);
          const float dht = dhr[j] + dyr[j];
          const float dct = dcr[j] + dht * og * (1.0f - tc * tc);
          gx[j] = dct * gg * ig * (1.0f - ig);
          gx[H + j] = dct * cprev[o + j] * fg * (1.0f - fg);
          gx[2 * H + j] = dct * ig * (1.0f - gg * gg);
          gx[3 * H + j] = dht * tc * og * (1.0f - og);
          dcr[j] = dct * fg;
        }
        std::copy(gx, gx + GH, sg);
      } else {
        float* gh = dgh + (t * N + n) * GH;
        for (int64_t j = 0; j < H; ++j) {
          const float rg = g[j], zg = g[H + j], ng = g[2 * H + j];
          const float dht = dhr[j] + dyr[j];
          const float dpn = dht * (1.0f - zg) * (1.0f - ng * ng);
          const float dpz = dht * (hprev[o + j] - ng) * zg * (1.0f - zg);
          const float dpr = dpn * s1[o + j] * rg * (1.0f - rg);
          gx[j] = dpr, gx[H + j] = dpz, gx[2 * H + j] = dpn;
          gh[j] = dpr, gh[H + j] = dpz, gh[2 * H + j] = dpn * rg;
          dhr[j] = dht * zg;  // the direct path; the recurrent GEMM adds the rest
        }
        std::copy(gh, gh + GH, sg);
      }
    }
    gemm(false, false, N, H, GH, 1.0f, step_g.data(), GH, whh, H, 0.0f, step_h.data(), H);
#pragma omp parallel for if (N * H > kPointwiseGrain)
    for (int64_t n = 0; n < N; ++n) {
      if (time_of(reverse, s, len[n]) < 0) continue;
      float* dhr = dh.data() + n * H;
      const float* sh = step_h.data() + n * H;
      for (int64_t j = 0; j < H; ++j) dhr[j] = is_lstm ? sh[j] : dhr[j] + sh[j];
    }
  }
  std::copy(dh.begin(), dh.end(), dh0.data<float>());
  if (is_lstm) std::copy(dc.begin(), dc.end(), dc0.data<float>());

  const int64_t rows = T * N;
  if (dx.defined())
    gemm(false, false, rows, I, GH, 1.0f, dgx.data(), GH, w.w_ih.data<float>(), I, 1.0f,
         dx.data<float>(), I);
  if (dw.w_ih.defined())
    gemm(true, false, GH, I, rows, 1.0f, dgx.data(), GH, x.data<float>(), I, 0.0f,
         dw.w_ih.data<float>(), I);
  if (dw.w_hh.defined())
    gemm(true, false, GH, H, rows, 1.0f, dgh, GH, hprev, H, 0.0f, dw.w_hh.data<float>(), H);
  if (dw.b_ih.defined() || dw.b_hh.defined()) {
    const std::vector<float> ones(rows, 1.0f);
    if (float* db = opt_mut(dw.b_ih))
      gemm(false, false, 1, GH, rows, 1.0f, ones.data(), rows, dgx.data(), GH, 0.0f, db, GH);
    if (float* db = opt_mut(dw.b_hh))
      gemm(false, false, 1, GH, rows, 1.0f, ones.data(), rows, dgh, GH, 0.0f, db, GH);
  }
}

void rnn_dropout_mask(const Tensor& mask, double p, uint64_t seed, uint64_t base) {
  float* m = mask.data<float>();
  const int64_t n = mask.numel();
  const float scale = static_cast<float>(1.0 / (1.0 - p));
  const float pf = static_cast<float>(p);
#pragma omp parallel for if (n > 4 * kPointwiseGrain)
  for (int64_t i = 0; i < n; ++i)
    m[i] = Generator::to_unit_float(Generator::hash(seed, base + static_cast<uint64_t>(i))) >= pf
               ? scale
               : 0.0f;
}

}  // namespace cpu
}  // namespace oar
