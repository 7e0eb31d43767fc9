// Fused scaled-dot-product attention on the CPU: per batch-head, scores = q k^T * scale + mask,
// a row softmax (a row with every score -inf gets all-zero weights), optional dropout, then
// weights v; GEMMs via oneDNN's sgemm. Heads run in parallel; each keeps its [Lq, Lk] scratch.
#include <dnnl.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "engine/core/error.h"
#include "engine/core/generator.h"
#include "engine/ops/cpu/fast_exp.h"
#include "engine/tensor/tensor.h"

namespace oar::cpu {

namespace {

void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {  // sgemm needs k >= 1; an empty product is zero
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
    return;
  }
  const dnnl_status_t st =
      dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  OAR_CHECK(st == dnnl_success, "scaled_dot_product_attention: oneDNN sgemm failed (status ",
            static_cast<int>(st), ")");
}

// Dropout factor of weight (b, i, j): 0 or 1/(1-p).
inline float keep_scale(double p, uint64_t seed, uint64_t index) {
  return Generator::to_unit_float(Generator::hash(seed, index)) >= static_cast<float>(p)
             ? static_cast<float>(1.0 / (1.0 - p))
             : 0.0f;
}

}  // namespace

void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask,
                       double scale, double p, uint64_t seed, uint64_t base, const Tensor& out,
                       const Tensor& probs) {
  const int64_t B = q.size(0), Lq = q.size(1), D = q.size(2), Lk = k.size(1), Dv = v.size(2);
  const float* pq = q.data<float>();
  const float* pk = k.data<float>();
  const float* pv = v.data<float>();
  float* po = out.data<float>();
  float* pp = probs.data<float>();
  const bool bool_mask = mask.defined() && mask.dtype() == DType::boolean;
  const float* mf = mask.defined() && !bool_mask ? mask.data<float>() : nullptr;
  const bool* mb = bool_mask ? mask.data<bool>() : nullptr;
  const int64_t ms0 = mask.defined() ? mask.stride(0) : 0;
  const int64_t ms1 = mask.defined() ? mask.stride(1) : 0;
  const int64_t ms2 = mask.defined() ? mask.stride(2) : 0;
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();

#pragma omp parallel for if (B > 1) schedule(dynamic)
  for (int64_t b = 0; b < B; ++b) {
    float* s = pp + b * Lq * Lk;
    gemm(false, true, Lq, Lk, D, static_cast<float>(scale), pq + b * Lq * D, D, pk + b * Lk * D, D,
         0.0f, s, Lk);
    for (int64_t i = 0; i < Lq; ++i) {
      float* row = s + i * Lk;
      if (mf || mb) {
        for (int64_t j = 0; j < Lk; ++j) {
          const int64_t mo = b * ms0 + i * ms1 + j * ms2;
          row[j] += mf ? mf[mo] : (mb[mo] ? 0.0f : kNegInf);
        }
      }
      float mx = kNegInf;
      for (int64_t j = 0; j < Lk; ++j) mx = std::max(mx, row[j]);
      if (mx == kNegInf) {  // nothing to attend to: zero weights, not NaN
        std::fill(row, row + Lk, 0.0f);
        continue;
      }
      float sum = 0.0f;
      for (int64_t j = 0; j < Lk; ++j) row[j] = fast_exp(row[j] - mx);
      for (int64_t j = 0; j < Lk; ++j) sum += row[j];
      const float inv = 1.0f / sum;
      for (int64_t j = 0; j < Lk; ++j) row[j] *= inv;
    }
    const float* w = s;
    std::vector<float> dropped;
    if (p > 0.0) {
      dropped.resize(Lq * Lk);
      const uint64_t b0 = base + static_cast<uint64_t>(b * Lq * Lk);
      for (int64_t e = 0; e < Lq * Lk; ++e)
        dropped[e] = s[e] * keep_scale(p, seed, b0 + static_cast<uint64_t>(e));
      w = dropped.data();
    }
    gemm(false, false, Lq, Dv, Lk, 1.0f, w, Lk, pv + b * Lk * Dv, Dv, 0.0f, po + b * Lq * Dv, Dv);
  }
}

void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& probs,
                        const Tensor& dout, double scale, double p, uint64_t seed, uint64_t base,
                        const Tensor& dq, const Tensor& dk, const Tensor& dv,
                        const Tensor& dscores) {
  const int64_t B = q.size(0), Lq = q.size(1), D = q.size(2), Lk = k.size(1), Dv = v.size(2);
  const float* pq = q.data<float>();
  const float* pk = k.data<float>();
  const float* pv = v.data<float>();
  const float* pp = probs.data<float>();
  const float* pdo = dout.data<float>();
  float* pdq = dq.defined() ? dq.data<float>() : nullptr;
  float* pdk = dk.defined() ? dk.data<float>() : nullptr;
  float* pdv = dv.defined() ? dv.data<float>() : nullptr;
  float* pds = dscores.defined() ? dscores.data<float>() : nullptr;
  const float sc = static_cast<float>(scale);

#pragma omp parallel for if (B > 1) schedule(dynamic)
  for (int64_t b = 0; b < B; ++b) {
    const float* P = pp + b * Lq * Lk;
    const float* dO = pdo + b * Lq * Dv;
    const uint64_t b0 = base + static_cast<uint64_t>(b * Lq * Lk);
    std::vector<float> keep;
    if (p > 0.0) {
      keep.resize(Lq * Lk);
      for (int64_t e = 0; e < Lq * Lk; ++e)
        keep[e] = keep_scale(p, seed, b0 + static_cast<uint64_t>(e));
    }
    if (pdv) {
      const float* w = P;
      std::vector<float> dropped;
      if (p > 0.0) {
        dropped.resize(Lq * Lk);
        for (int64_t e = 0; e < Lq * Lk; ++e) dropped[e] = P[e] * keep[e];
        w = dropped.data();
      }
      gemm(true, false, Lk, Dv, Lq, 1.0f, w, Lk, dO, Dv, 0.0f, pdv + b * Lk * Dv, Dv);
    }
    if (!pdq && !pdk && !pds) continue;
    // dP = dO v^T (through the dropout), then dS = P * (dP - rowsum(P * dP)).
    std::vector<float> local;
    float* dS = pds ? pds + b * Lq * Lk : (local.resize(Lq * Lk), local.data());
    gemm(false, true, Lq, Lk, Dv, 1.0f, dO, Dv, pv + b * Lk * Dv, Dv, 0.0f, dS, Lk);
    for (int64_t i = 0; i < Lq; ++i) {
      float* row = dS + i * Lk;
      const float* prow = P + i * Lk;
      if (p > 0.0)
        for (int64_t j = 0; j < Lk; ++j) row[j] *= keep[i * Lk + j];
      float dot = 0.0f;
      for (int64_t j = 0; j < Lk; ++j) dot += prow[j] * row[j];
      for (int64_t j = 0; j < Lk; ++j) row[j] = prow[j] * (row[j] - dot);
    }
    if (pdq)
      gemm(false, false, Lq, D, Lk, sc, dS, Lk, pk + b * Lk * D, D, 0.0f, pdq + b * Lq * D, D);
    if (pdk)
      gemm(true, false, Lk, D, Lq, sc, dS, Lk, pq + b * Lq * D, D, 0.0f, pdk + b * Lk * D, D);
  }
}

}  // namespace oar::cpu
