// LSTM / GRU on the CPU: the input projection of all time steps is one GEMM, the recurrent
// projection one GEMM per step and thread (oneDNN's sgemm); gates are fused pointwise loops.
// Variable lengths are handled per row: row n at step s works on time t = s (forward) or len_n - 1
// - s (reverse), so the reverse direction starts at each sequence's last valid step.
#include <dnnl.h>
#include <omp.h>

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

// The recurrence runs in one parallel region per layer: thread p owns hidden units
// [j0, j1) and computes, for them, the recurrent GEMM columns of every gate and the gate
// pointwise work, so a step needs one barrier instead of a fork/join per GEMM and per loop
// (those dominated on small batches). GEMMs inside the region run on the calling thread.
struct HiddenChunks {
  int threads = 1;
  std::vector<int64_t> begin;  // threads + 1 boundaries over [0, H)

  HiddenChunks(int64_t N, int64_t GH, int64_t H) {
    const int max_threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    // At least 16 hidden units (one AVX-512 vector) and some GEMM work per thread.
    const int64_t by_units = std::max<int64_t>(1, H / 16);
    const int64_t by_work = std::max<int64_t>(1, N * GH * H / (1 << 18));
    threads = static_cast<int>(std::min<int64_t>({max_threads, by_units, by_work}));
    begin.resize(threads + 1);
    for (int p = 0; p <= threads; ++p) begin[p] = (H * p / threads) / 16 * 16;
    begin[threads] = H;
  }
};

}  // namespace

void rnn_layer_forward(RnnCell cell, bool reverse, const Tensor& x, const RnnWeights& w,
                       const Tensor& lengths, const Tensor& h0, const Tensor& c0, const Tensor& y,
                       const Tensor& hn, const Tensor& cn, const std::vector<Tensor>& saved) {
  const bool is_lstm = cell == RnnCell::lstm;
  const int64_t T = x.size(0), N = x.size(1), I = x.size(2), H = hn.size(1);
  const int64_t G = is_lstm ? 4 : 3, GH = G * H;
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

  // h is double-buffered: step s reads h[s % 2] (all units, in the GEMM) and writes
  // h[(s + 1) % 2] (its own units), so one barrier per step separates readers and writers.
  std::vector<float> h(2 * N * H);
  std::copy(h0.data<float>(), h0.data<float>() + N * H, h.begin());
  std::vector<float> c;
  if (is_lstm) c.assign(c0.data<float>(), c0.data<float>() + N * H);
  int64_t steps = 0;
  for (int64_t n = 0; n < N; ++n) steps = std::max(steps, len[n]);
  const HiddenChunks chunks(N, GH, H);
  // W_hh rows regrouped by chunk: chunk p holds, gate by gate, the rows of its units, so its
  // recurrent GEMM is one product with a contiguous [G * hc, H] weight.
  std::vector<float> wp(GH * H);
  for (int p = 0; p < chunks.threads; ++p) {
    const int64_t j0 = chunks.begin[p], hc = chunks.begin[p + 1] - j0;
    float* dst = wp.data() + G * j0 * H;
    for (int64_t g = 0; g < G; ++g)
      std::copy(whh + (g * H + j0) * H, whh + (g * H + j0 + hc) * H, dst + g * hc * H);
  }

#pragma omp parallel num_threads(chunks.threads) if (chunks.threads > 1)
  {
    const int p = chunks.threads > 1 ? omp_get_thread_num() : 0;
    const int64_t j0 = chunks.begin[p], hc = chunks.begin[p + 1] - j0, GC = G * hc;
    std::vector<float> hw(N * GC);  // this chunk's W_hh h (+ b_hh for the GRU), gate by gate
    for (int64_t s = 0; s < steps; ++s) {
      const float* hin = h.data() + (s % 2) * N * H;
      float* hout = h.data() + ((s + 1) % 2) * N * H;
      if (hc > 0)
        gemm(false, true, N, GC, H, 1.0f, hin, H, wp.data() + G * j0 * H, H, 0.0f, hw.data(), GC);
      for (int64_t n = 0; n < N; ++n) {
        const float* __restrict hi = hin + n * H + j0;
        float* __restrict ho = hout + n * H + j0;
        const int64_t t = time_of(reverse, s, len[n]);
        if (t < 0) {
          std::copy(hi, hi + hc, ho);
          continue;
        }
        float* __restrict g = gates + (t * N + n) * GH + j0;  // gate k of unit j: g[k * H + j]
        float* __restrict r = hw.data() + n * GC;             // gate k of unit j: r[k * hc + j]
        float* __restrict out = py + t * ys0 + n * ys1 + j0;
        const int64_t o = (t * N + n) * H + j0;
        // Separate simple passes so each loop vectorises.
        if (is_lstm) {
          float* __restrict cr = c.data() + n * H + j0;
          if (keep) {
            std::copy(hi, hi + hc, s2 + o);
            std::copy(cr, cr + hc, s3 + o);
          }
          for (int64_t k = 0; k < G; ++k)
            for (int64_t j = 0; j < hc; ++j) g[k * H + j] += r[k * hc + j];
          for (int64_t j = 0; j < hc; ++j) g[j] = fast_sigmoid(g[j]);
          for (int64_t j = 0; j < hc; ++j) g[H + j] = fast_sigmoid(g[H + j]);
          for (int64_t j = 0; j < hc; ++j) g[2 * H + j] = fast_tanh(g[2 * H + j]);
          for (int64_t j = 0; j < hc; ++j) g[3 * H + j] = fast_sigmoid(g[3 * H + j]);
          for (int64_t j = 0; j < hc; ++j) cr[j] = g[H + j] * cr[j] + g[j] * g[2 * H + j];
          for (int64_t j = 0; j < hc; ++j) ho[j] = g[3 * H + j] * fast_tanh(cr[j]);
          if (keep) std::copy(cr, cr + hc, s1 + o);
        } else {
          if (keep) std::copy(hi, hi + hc, s2 + o);
          if (bhh)
            for (int64_t k = 0; k < G; ++k)
              for (int64_t j = 0; j < hc; ++j) r[k * hc + j] += bhh[k * H + j0 + j];
          for (int64_t j = 0; j < hc; ++j) g[j] = fast_sigmoid(g[j] + r[j]);
          for (int64_t j = 0; j < hc; ++j) g[H + j] = fast_sigmoid(g[H + j] + r[hc + j]);
          for (int64_t j = 0; j < hc; ++j)
            g[2 * H + j] = fast_tanh(g[2 * H + j] + g[j] * r[2 * hc + j]);
          for (int64_t j = 0; j < hc; ++j)
            ho[j] = (1.0f - g[H + j]) * g[2 * H + j] + g[H + j] * hi[j];
          if (keep) std::copy(r + 2 * hc, r + 3 * hc, s1 + o);
        }
        std::copy(ho, ho + hc, out);
      }
#pragma omp barrier
    }
  }
  const float* hlast = h.data() + (steps % 2) * N * H;
  std::copy(hlast, hlast + N * H, hn.data<float>());
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
  // (W_hh, b_hh), which differs from dgx only for the GRU's n gate (scaled by r). Every
  // element is written by the recurrence below (zeros at padded steps).
  std::vector<float> dgx(T * N * GH, 0.0f);
  std::vector<float> dgh_store(is_lstm ? 0 : T * N * GH, 0.0f);
  float* dgh = is_lstm ? dgx.data() : dgh_store.data();
  std::vector<float> dh(dhn.data<float>(), dhn.data<float>() + N * H);
  std::vector<float> dc;
  if (is_lstm) dc.assign(dcn.data<float>(), dcn.data<float>() + N * H);
  // step_g is double-buffered: step s writes buffer s % 2 (its own units) and, after the
  // barrier, every thread reads all of it in its GEMM, while faster threads may already write
  // the other buffer for step s - 1.
  std::vector<float> step_g(2 * N * GH);
  int64_t steps = 0;
  for (int64_t n = 0; n < N; ++n) steps = std::max(steps, len[n]);
  const HiddenChunks chunks(N, GH, H);

#pragma omp parallel num_threads(chunks.threads) if (chunks.threads > 1)
  {
    const int p = chunks.threads > 1 ? omp_get_thread_num() : 0;
    const int64_t j0 = chunks.begin[p], hc = chunks.begin[p + 1] - j0;
    std::vector<float> step_h(N * hc);  // W_hh^T step_g for this chunk's units
    for (int64_t s = steps - 1; s >= 0; --s) {
      float* sgs = step_g.data() + (s % 2) * N * GH;
      for (int64_t n = 0; n < N; ++n) {
        const int64_t t = time_of(reverse, s, len[n]);
        float* sg = sgs + n * GH + j0;  // gate k of unit j: sg[k * H + j]
        if (t < 0) {
          for (int64_t k = 0; k < GH / H; ++k) std::fill(sg + k * H, sg + k * H + hc, 0.0f);
          continue;
        }
        const float* g = gates + (t * N + n) * GH + j0;
        const int64_t o = (t * N + n) * H + j0;
        float* gx = dgx.data() + (t * N + n) * GH + j0;
        float* dhr = dh.data() + n * H + j0;
        const float* dyr = pdy + t * ds0 + n * ds1 + j0;
        if (is_lstm) {
          float* dcr = dc.data() + n * H + j0;
          for (int64_t j = 0; j < hc; ++j) {
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
          for (int64_t k = 0; k < 4; ++k) std::copy(gx + k * H, gx + k * H + hc, sg + k * H);
        } else {
          float* gh = dgh + (t * N + n) * GH + j0;
          for (int64_t j = 0; j < hc; ++j) {
            const float rg = g[j], zg = g[H + j], ng = g[2 * H + j];
            const float dht = dhr[j] + dyr[j];
            const float dpn = dht * (1.0f - zg) * (1.0f - ng * ng);
            const float dpz = dht * (hprev[o + j] - ng) * zg * (1.0f - zg);
            const float dpr = dpn * s1[o + j] * rg * (1.0f - rg);
            gx[j] = dpr, gx[H + j] = dpz, gx[2 * H + j] = dpn;
            gh[j] = dpr, gh[H + j] = dpz, gh[2 * H + j] = dpn * rg;
            dhr[j] = dht * zg;  // the direct path; the recurrent GEMM adds the rest
          }
          for (int64_t k = 0; k < 3; ++k) std::copy(gh + k * H, gh + k * H + hc, sg + k * H);
        }
      }
#pragma omp barrier
      if (hc > 0)
        gemm(false, false, N, hc, GH, 1.0f, sgs, GH, whh + j0, H, 0.0f, step_h.data(), hc);
      for (int64_t n = 0; n < N; ++n) {
        if (time_of(reverse, s, len[n]) < 0) continue;
        float* dhr = dh.data() + n * H + j0;
        const float* sh = step_h.data() + n * hc;
        for (int64_t j = 0; j < hc; ++j) dhr[j] = is_lstm ? sh[j] : dhr[j] + sh[j];
      }
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
