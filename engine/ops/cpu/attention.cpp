// Fused scaled-dot-product attention on the CPU: per batch-head, scores = q k^T * scale + mask,
// a row softmax (a row with every score -inf gets all-zero weights), optional dropout, then
// weights v; GEMMs via oneDNN's sgemm straight on the strided operands (no head split/merge
// copies, the mask read broadcast in place). Heads run in parallel; each keeps its [Lq, Lk]
// scratch.
#include <dnnl.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "engine/core/error.h"
#include "engine/core/generator.h"
#include "engine/ops/attention_cpu.h"
#include "engine/ops/cpu/fast_exp.h"

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

void attention_forward(const MatrixBatch& q, const MatrixBatch& k, const MatrixBatch& v,
                       const MaskBatch& mask, int64_t B, int64_t Lq, int64_t Lk, int64_t D,
                       int64_t Dv, double scale, double p, uint64_t seed, uint64_t base,
                       const MatrixBatch& out, float* pp) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();

#pragma omp parallel for if (B > 1) schedule(dynamic)
  for (int64_t b = 0; b < B; ++b) {
    float* s = pp + b * Lq * Lk;
    gemm(false, true, Lq, Lk, D, static_cast<float>(scale), q.at(b), q.ld, k.at(b), k.ld, 0.0f, s,
         Lk);
    const int64_t mo = mask.defined() ? mask.offset[static_cast<size_t>(b)] : 0;
    for (int64_t i = 0; i < Lq; ++i) {
      float* row = s + i * Lk;
      if (mask.additive) {
        const float* m = mask.additive + mo + i * mask.row_stride;
        if (mask.col_stride == 1) {
          for (int64_t j = 0; j < Lk; ++j) row[j] += m[j];
        } else {
          for (int64_t j = 0; j < Lk; ++j) row[j] += m[j * mask.col_stride];
        }
      } else if (mask.keep) {
        const bool* m = mask.keep + mo + i * mask.row_stride;
        for (int64_t j = 0; j < Lk; ++j)
          if (!m[j * mask.col_stride]) row[j] = kNegInf;
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
      dropped.resize(static_cast<size_t>(Lq * Lk));
      const uint64_t b0 = base + static_cast<uint64_t>(b * Lq * Lk);
      for (int64_t e = 0; e < Lq * Lk; ++e)
        dropped[static_cast<size_t>(e)] = s[e] * keep_scale(p, seed, b0 + static_cast<uint64_t>(e));
      w = dropped.data();
    }
    gemm(false, false, Lq, Dv, Lk, 1.0f, w, Lk, v.at(b), v.ld, 0.0f, out.at(b), out.ld);
  }
}

void attention_backward(const MatrixBatch& q, const MatrixBatch& k, const MatrixBatch& v,
                        const float* pp, const MatrixBatch& dout, int64_t B, int64_t Lq, int64_t Lk,
                        int64_t D, int64_t Dv, double scale, double p, uint64_t seed, uint64_t base,
                        const MatrixBatch& dq, const MatrixBatch& dk, const MatrixBatch& dv,
                        float* pds) {
  const float sc = static_cast<float>(scale);

#pragma omp parallel for if (B > 1) schedule(dynamic)
  for (int64_t b = 0; b < B; ++b) {
    const float* P = pp + b * Lq * Lk;
    const float* dO = dout.at(b);
    const uint64_t b0 = base + static_cast<uint64_t>(b * Lq * Lk);
    std::vector<float> keep;
    if (p > 0.0) {
      keep.resize(static_cast<size_t>(Lq * Lk));
      for (int64_t e = 0; e < Lq * Lk; ++e)
        keep[static_cast<size_t>(e)] = keep_scale(p, seed, b0 + static_cast<uint64_t>(e));
    }
    if (dv.data) {
      const float* w = P;
      std::vector<float> dropped;
      if (p > 0.0) {
        dropped.resize(static_cast<size_t>(Lq * Lk));
        for (int64_t e = 0; e < Lq * Lk; ++e)
          dropped[static_cast<size_t>(e)] = P[e] * keep[static_cast<size_t>(e)];
        w = dropped.data();
      }
      gemm(true, false, Lk, Dv, Lq, 1.0f, w, Lk, dO, dout.ld, 0.0f, dv.at(b), dv.ld);
    }
    if (!dq.data && !dk.data && !pds) continue;
    // dP = dO v^T (through the dropout), then dS = P * (dP - rowsum(P * dP)).
    std::vector<float> local;
    float* dS =
        pds ? pds + b * Lq * Lk : (local.resize(static_cast<size_t>(Lq * Lk)), local.data());
    gemm(false, true, Lq, Lk, Dv, 1.0f, dO, dout.ld, v.at(b), v.ld, 0.0f, dS, Lk);
    for (int64_t i = 0; i < Lq; ++i) {
      float* row = dS + i * Lk;
      const float* prow = P + i * Lk;
      if (p > 0.0)
        for (int64_t j = 0; j < Lk; ++j) row[j] *= keep[static_cast<size_t>(i * Lk + j)];
      float dot = 0.0f;
      for (int64_t j = 0; j < Lk; ++j) dot += prow[j] * row[j];
      for (int64_t j = 0; j < Lk; ++j) row[j] = prow[j] * (row[j] - dot);
    }
    if (dq.data) gemm(false, false, Lq, D, Lk, sc, dS, Lk, k.at(b), k.ld, 0.0f, dq.at(b), dq.ld);
    if (dk.data) gemm(true, false, Lk, D, Lq, sc, dS, Lk, q.at(b), q.ld, 0.0f, dk.at(b), dk.ld);
  }
}

}  // namespace oar::cpu
