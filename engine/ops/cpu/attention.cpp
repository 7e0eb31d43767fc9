// Fused scaled-dot-product attention on the CPU: per batch-head, scores = q k^T * scale + mask,
// a row softmax (a row with every score -inf gets all-zero weights), optional dropout, then
// weights v; GEMMs via oneDNN's sgemm straight on the strided operands (no head split/merge
// copies, the mask read broadcast in place). Heads run in parallel; each keeps its [Lq, Lk]
// scratch. The row loops run in eight-float vectors; dropout draws its keep bits once in forward
// (dropout_keep_bits) and backward reads them.
#include <dnnl.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define OAR_ATTENTION_AVX512 1
#endif

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "engine/core/cpu_features.h"
#include "engine/core/error.h"
#include "engine/ops/attention_cpu.h"
#include "engine/ops/cpu/dropout_bits.h"
#include "engine/ops/cpu/fast_exp.h"
#include "engine/ops/cpu/vec8.h"

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

float row_max(const float* r, int64_t n) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  int64_t j = 0;
  float m = kNegInf;
  if (n >= kV) {
    v8f a = load8(r), b = a;
    for (j = kV; j + 2 * kV <= n; j += 2 * kV) {
      const v8f x = load8(r + j), y = load8(r + j + kV);
      a = a > x ? a : x;
      b = b > y ? b : y;
    }
    a = a > b ? a : b;
    for (int k = 0; k < kV; ++k) m = std::max(m, a[k]);
  }
  for (; j < n; ++j) m = std::max(m, r[j]);
  return m;
}

float row_sum(const float* r, int64_t n) {
  v8f a = {}, b = {};
  int64_t j = 0;
  for (; j + 2 * kV <= n; j += 2 * kV) {
    a += load8(r + j);
    b += load8(r + j + kV);
  }
  for (; j + kV <= n; j += kV) a += load8(r + j);
  float s = hsum(a + b);
  for (; j < n; ++j) s += r[j];
  return s;
}

float row_dot(const float* x, const float* y, int64_t n) {
  v8f a = {}, b = {};
  int64_t j = 0;
  for (; j + 2 * kV <= n; j += 2 * kV) {
    a += load8(x + j) * load8(y + j);
    b += load8(x + j + kV) * load8(y + j + kV);
  }
  for (; j + kV <= n; j += kV) a += load8(x + j) * load8(y + j);
  float s = hsum(a + b);
  for (; j < n; ++j) s += x[j] * y[j];
  return s;
}

// The softmax's exp pass over a matrix's rows, s[i][j] = exp(s[i][j] - mx[i]), skipping rows whose
// max is -inf: most of the row work. One call covers every row, so that the out-of-order core
// overlaps the exps of consecutive rows (a row of 128 is only 8 vectors of a long dependent
// chain). On AVX-512 CPUs the same loop runs sixteen lanes wide (the same operations per
// element, so the same bits; the project builds for AVX2).
[[gnu::always_inline]] inline void exp_shift_loop(float* s, int64_t rows, int64_t n,
                                                  const float* mx) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < rows; ++i) {
    if (mx[i] == kNegInf) continue;
    float* row = s + i * n;
    const float m = mx[i];
    for (int64_t j = 0; j < n; ++j) row[j] = fast_exp(row[j] - m);
  }
}

#ifdef OAR_ATTENTION_AVX512
OAR_TARGET_AVX512 void exp_shift_avx512(float* s, int64_t rows, int64_t n, const float* mx) {
  exp_shift_loop(s, rows, n, mx);
}
#endif

void exp_shift(float* s, int64_t rows, int64_t n, const float* mx) {
#ifdef OAR_ATTENTION_AVX512
  if (cpu_has_avx512()) return exp_shift_avx512(s, rows, n, mx);
#endif
  exp_shift_loop(s, rows, n, mx);
}

}  // namespace

int64_t attention_keep_bytes(int64_t Lq, int64_t Lk) {
  return (Lq * Lk + 7) / 8;
}

void attention_forward(const MatrixBatch& q, const MatrixBatch& k, const MatrixBatch& v,
                       const MaskBatch& mask, int64_t B, int64_t Lq, int64_t Lk, int64_t D,
                       int64_t Dv, double scale, double p, uint64_t seed, uint64_t base,
                       const MatrixBatch& out, float* pp, uint8_t* keep) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  const int64_t kb = attention_keep_bytes(Lq, Lk);
  const float keep_scale = static_cast<float>(1.0 / (1.0 - p));

#pragma omp parallel for if (B > 1) schedule(dynamic)
  for (int64_t b = 0; b < B; ++b) {
    float* s = pp + b * Lq * Lk;
    gemm(false, true, Lq, Lk, D, static_cast<float>(scale), q.at(b), q.ld, k.at(b), k.ld, 0.0f, s,
         Lk);
    const int64_t mo = mask.defined() ? mask.offset[static_cast<size_t>(b)] : 0;
    // Three passes over the matrix, each over every row: mask and row max, exp, normalise.
    thread_local std::vector<float> row_max_of;
    row_max_of.resize(static_cast<size_t>(Lq));
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
      row_max_of[static_cast<size_t>(i)] = row_max(row, Lk);
    }
    exp_shift(s, Lq, Lk, row_max_of.data());
    for (int64_t i = 0; i < Lq; ++i) {
      float* row = s + i * Lk;
      if (row_max_of[static_cast<size_t>(i)] == kNegInf) {  // nothing to attend to: zero weights
        std::fill(row, row + Lk, 0.0f);
        continue;
      }
      const float inv = 1.0f / row_sum(row, Lk);
      for (int64_t j = 0; j < Lk; ++j) row[j] *= inv;
    }
    const float* w = s;
    std::unique_ptr<float[]> dropped;  // not zero-filled: written in full before use
    if (p > 0.0) {
      uint8_t* bits = keep + b * kb;
      dropout_keep_bits(seed, base + static_cast<uint64_t>(b * Lq * Lk), Lq * Lk, p, bits);
      dropped.reset(new float[static_cast<size_t>(Lq * Lk)]);
      apply_keep_bits(dropped.get(), s, bits, Lq * Lk, keep_scale);
      w = dropped.get();
    }
    gemm(false, false, Lq, Dv, Lk, 1.0f, w, Lk, v.at(b), v.ld, 0.0f, out.at(b), out.ld);
  }
}

void attention_backward(const MatrixBatch& q, const MatrixBatch& k, const MatrixBatch& v,
                        const float* pp, const uint8_t* keep, const MatrixBatch& dout, int64_t B,
                        int64_t Lq, int64_t Lk, int64_t D, int64_t Dv, double scale, double p,
                        const MatrixBatch& dq, const MatrixBatch& dk, const MatrixBatch& dv,
                        float* pds) {
  const float sc = static_cast<float>(scale);
  const int64_t kb = attention_keep_bytes(Lq, Lk);
  const float keep_scale = static_cast<float>(1.0 / (1.0 - p));

#pragma omp parallel for if (B > 1) schedule(dynamic)
  for (int64_t b = 0; b < B; ++b) {
    const float* P = pp + b * Lq * Lk;
    const float* dO = dout.at(b);
    const uint8_t* bits = p > 0.0 ? keep + b * kb : nullptr;
    std::unique_ptr<float[]> scratch;  // not zero-filled: written in full before use
    auto scratch_buffer = [&] {
      if (!scratch) scratch.reset(new float[static_cast<size_t>(Lq * Lk)]);
      return scratch.get();
    };
    if (dv.data) {
      const float* w = P;
      if (bits) {
        apply_keep_bits(scratch_buffer(), P, bits, Lq * Lk, keep_scale);
        w = scratch.get();
      }
      gemm(true, false, Lk, Dv, Lq, 1.0f, w, Lk, dO, dout.ld, 0.0f, dv.at(b), dv.ld);
    }
    if (!dq.data && !dk.data && !pds) continue;
    // dP = dO v^T (through the dropout), then dS = P * (dP - rowsum(P * dP)).
    float* dS = pds ? pds + b * Lq * Lk : scratch_buffer();
    gemm(false, true, Lq, Lk, Dv, 1.0f, dO, dout.ld, v.at(b), v.ld, 0.0f, dS, Lk);
    if (bits) apply_keep_bits(dS, dS, bits, Lq * Lk, keep_scale);
    for (int64_t i = 0; i < Lq; ++i) {
      float* row = dS + i * Lk;
      const float* prow = P + i * Lk;
      const float dot = row_dot(prow, row, Lk);
      for (int64_t j = 0; j < Lk; ++j) row[j] = prow[j] * (row[j] - dot);
    }
    if (dq.data) gemm(false, false, Lq, D, Lk, sc, dS, Lk, k.at(b), k.ld, 0.0f, dq.at(b), dq.ld);
    if (dk.data) gemm(true, false, Lk, D, Lq, sc, dS, Lk, q.at(b), q.ld, 0.0f, dk.at(b), dk.ld);
  }
}

}  // namespace oar::cpu
