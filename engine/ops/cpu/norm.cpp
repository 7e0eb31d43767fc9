#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/core/error.h"
#include "engine/ops/cpu/layer_norm_row.h"
#include "engine/ops/cpu/loops.h"
#include "engine/ops/cpu/vec8.h"

namespace oar::cpu {

// Batch norm over plain NCHW-style f32 memory with our own loops: oneDNN's kernel for plain
// layouts is its slow reference path (measured at ~30% of a small CNN's step), while here each
// channel is N contiguous runs of the spatial size that vectorise well. Channels are split
// across threads; statistics accumulate in double.
void batch_norm_forward(const Tensor& y, const Tensor& mean, const Tensor& var, const Tensor& x,
                        const Tensor& weight, const Tensor& bias, double eps, bool global_stats,
                        bool training) {
  const int64_t n = x.size(0), c = x.size(1), hw = x.numel() / std::max<int64_t>(1, n * c);
  const float* px = x.data<float>();
  float* py = y.data<float>();
  float* pm = (training || global_stats) ? mean.data<float>() : nullptr;
  float* pv = (training || global_stats) ? var.data<float>() : nullptr;
  const float* pw = weight.defined() ? weight.data<float>() : nullptr;
  const float* pb = bias.defined() ? bias.data<float>() : nullptr;
  const double count = static_cast<double>(n * hw);
#pragma omp parallel for schedule(static) if (x.numel() > 4096)
  for (int64_t ch = 0; ch < c; ++ch) {
    double mu, v;
    if (global_stats) {
      mu = pm[ch];
      v = pv[ch];
    } else {
      double s = 0;
      for (int64_t i = 0; i < n; ++i) {
        const float* r = px + (i * c + ch) * hw;
        float acc = 0;
        for (int64_t k = 0; k < hw; ++k) acc += r[k];
        s += acc;
      }
      mu = s / count;
      double q = 0;
      const float m32 = static_cast<float>(mu);
      for (int64_t i = 0; i < n; ++i) {
        const float* r = px + (i * c + ch) * hw;
        float acc = 0;
        for (int64_t k = 0; k < hw; ++k) {
          const float d = r[k] - m32;
          acc += d * d;
        }
        q += acc;
      }
      v = q / count;
      if (pm) {
        pm[ch] = static_cast<float>(mu);
        pv[ch] = static_cast<float>(v);
      }
    }
    const float rstd = static_cast<float>(1.0 / std::sqrt(v + eps));
    const float scale = (pw ? pw[ch] : 1.0f) * rstd;
    const float shift = (pb ? pb[ch] : 0.0f) - static_cast<float>(mu) * scale;
    for (int64_t i = 0; i < n; ++i) {
      const float* r = px + (i * c + ch) * hw;
      float* o = py + (i * c + ch) * hw;
      for (int64_t k = 0; k < hw; ++k) o[k] = r[k] * scale + shift;
    }
  }
}

void batch_norm_backward(const Tensor& gx, const Tensor& gw, const Tensor& gb, const Tensor& gy,
                         const Tensor& x, const Tensor& mean, const Tensor& var,
                         const Tensor& weight, const Tensor& bias, double eps, bool global_stats) {
  const int64_t n = x.size(0), c = x.size(1), hw = x.numel() / std::max<int64_t>(1, n * c);
  const float* px = x.data<float>();
  const float* pg = gy.data<float>();
  float* pdx = gx.data<float>();
  const float* pm = mean.data<float>();
  const float* pv = var.data<float>();
  const float* pw = weight.defined() ? weight.data<float>() : nullptr;
  float* pdw = gw.defined() ? gw.data<float>() : nullptr;
  float* pdb = gb.defined() ? gb.data<float>() : nullptr;
  const double count = static_cast<double>(n * hw);
#pragma omp parallel for schedule(static) if (x.numel() > 4096)
  for (int64_t ch = 0; ch < c; ++ch) {
    const float mu = pm[ch];
    const float rstd = static_cast<float>(1.0 / std::sqrt(static_cast<double>(pv[ch]) + eps));
    double sum_g = 0, sum_gx = 0;  // sum dy, sum dy * (x - mean)
    for (int64_t i = 0; i < n; ++i) {
      const float* r = px + (i * c + ch) * hw;
      const float* g = pg + (i * c + ch) * hw;
      float a = 0, b = 0;
      for (int64_t k = 0; k < hw; ++k) {
        a += g[k];
        b += g[k] * (r[k] - mu);
      }
      sum_g += a;
      sum_gx += b;
    }
    if (pdw) pdw[ch] = static_cast<float>(sum_gx * rstd);
    if (pdb) pdb[ch] = static_cast<float>(sum_g);
    const float w = pw ? pw[ch] : 1.0f;
    if (global_stats) {
      const float k1 = w * rstd;
      for (int64_t i = 0; i < n; ++i) {
        const float* g = pg + (i * c + ch) * hw;
        float* o = pdx + (i * c + ch) * hw;
        for (int64_t k = 0; k < hw; ++k) o[k] = g[k] * k1;
      }
      continue;
    }
    // dx = w rstd (dy - mean(dy) - (x - mu) rstd^2 mean(dy (x - mu)))
    const float k1 = w * rstd;
    const float mg = static_cast<float>(sum_g / count);
    const float k2 = static_cast<float>(sum_gx / count) * rstd * rstd;
    for (int64_t i = 0; i < n; ++i) {
      const float* r = px + (i * c + ch) * hw;
      const float* g = pg + (i * c + ch) * hw;
      float* o = pdx + (i * c + ch) * hw;
      for (int64_t k = 0; k < hw; ++k) o[k] = k1 * (g[k] - mg - (r[k] - mu) * k2);
    }
  }
}

// Layer norm with our own loops, one parallel region per call (rows split across threads):
// oneDNN's backward ran several regions plus a reduction for the parameter gradients, and each
// region costs a thread rendezvous that dominates on a busy machine. Each row is read from
// memory once per direction (its later passes hit L1); row sums run in eight-float vectors,
// folded into double every kChunk elements. var is the biased variance.
namespace {

constexpr int64_t kChunk = 512;

// Asks for the k floats at p (a row a few rows ahead) to be brought into cache: the row loops
// are bound by memory, and the hardware prefetcher restarts at every page.
inline void prefetch_row(const float* p, int64_t k) {
  for (int64_t j = 0; j < k; j += 16) __builtin_prefetch(p + j);
}

}  // namespace

void layer_norm_forward(const Tensor& y, const Tensor& mean, const Tensor& var, const Tensor& x,
                        const Tensor& weight, const Tensor& bias, double eps) {
  const int64_t m = x.size(0), k = x.size(1);
  const float* px = x.data<float>();
  float* py = y.data<float>();
  float* pm = mean.defined() ? mean.data<float>() : nullptr;
  float* pv = var.defined() ? var.data<float>() : nullptr;
  const float* pw = weight.defined() ? weight.data<float>() : nullptr;
  const float* pb = bias.defined() ? bias.data<float>() : nullptr;
#pragma omp parallel for schedule(static) if (m * k > kGrain && m > 1)
  for (int64_t r = 0; r < m; ++r) {
    const float* xr = px + r * k;
    float* yr = py + r * k;
    if (r + 2 < m) prefetch_row(xr + 2 * k, k);
    layer_norm_row(xr, yr, k, eps, pw, pb, pm ? pm + r : nullptr, pv ? pv + r : nullptr);
  }
}

// dx = rstd (g - mean(g) - xhat mean(g xhat)) with g = dy w and xhat = (x - mean) rstd; the
// parameter gradients sum dy xhat and dy over rows, per thread, then across threads in order.
// A row takes two passes: one for the two row sums and the parameter sums (the only one that
// reads x and dy from memory), one for dx.
void layer_norm_backward(const Tensor& gx, const Tensor& gw, const Tensor& gb, const Tensor& gy,
                         const Tensor& x, const Tensor& mean, const Tensor& var,
                         const Tensor& weight, const Tensor& bias, double eps) {
  (void)bias;
  const int64_t m = x.size(0), k = x.size(1);
  const Tensor gyc = gy.contiguous();
  const float* px = x.data<float>();
  const float* pg = gyc.data<float>();
  float* pdx = gx.data<float>();
  const float* pm = mean.data<float>();
  const float* pv = var.data<float>();
  const float* pw = weight.defined() ? weight.data<float>() : nullptr;
  float* pdw = gw.defined() ? gw.data<float>() : nullptr;
  float* pdb = gb.defined() ? gb.data<float>() : nullptr;
  const bool params = pdw || pdb;
  const int threads = (m * k > kGrain && m > 1 && !omp_in_parallel())
                          ? static_cast<int>(std::min<int64_t>(omp_get_max_threads(), m))
                          : 1;
  // Per thread: k sums of dy xhat, then k sums of dy.
  std::vector<float> part(params ? static_cast<size_t>(threads) * 2 * k : 0, 0.0f);
  // Weight 1 where there is none, so one loop serves both.
  std::vector<float> ones(pw ? 0 : k, 1.0f);
  const float* wt = pw ? pw : ones.data();
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    const int t = threads > 1 ? omp_get_thread_num() : 0;
    const int64_t r0 = m * t / threads, r1 = m * (t + 1) / threads;
    float* dwp = params ? part.data() + static_cast<size_t>(t) * 2 * k : nullptr;
    float* dbp = params ? dwp + k : nullptr;
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = px + r * k;
      const float* dy = pg + r * k;
      float* dx = pdx + r * k;
      if (r + 2 < r1) {
        prefetch_row(xr + 2 * k, k);
        prefetch_row(dy + 2 * k, k);
      }
      const float mu = pm[r];
      const float rstd = static_cast<float>(1.0 / std::sqrt(static_cast<double>(pv[r]) + eps));
      const v8f muv = splat(mu), rv = splat(rstd);
      // Pass 1: sum g and sum g xhat; dw += dy xhat, db += dy.
      double sg = 0, sgx = 0;
      for (int64_t c0 = 0; c0 < k; c0 += kChunk) {
        const int64_t c1 = std::min(k, c0 + kChunk);
        v8f a = {}, b = {};
        int64_t j = c0;
        for (; j + kV <= c1; j += kV) {
          const v8f d = load8(dy + j);
          const v8f xh = (load8(xr + j) - muv) * rv;
          const v8f g = d * load8(wt + j);
          a += g;
          b += g * xh;
          if (params) {
            store8(dwp + j, load8(dwp + j) + d * xh);
            store8(dbp + j, load8(dbp + j) + d);
          }
        }
        float as = hsum(a), bs = hsum(b);
        for (; j < c1; ++j) {
          const float xh = (xr[j] - mu) * rstd;
          const float g = dy[j] * wt[j];
          as += g;
          bs += g * xh;
          if (params) {
            dwp[j] += dy[j] * xh;
            dbp[j] += dy[j];
          }
        }
        sg += as;
        sgx += bs;
      }
      const float mg = static_cast<float>(sg / static_cast<double>(k));
      const float mgx = static_cast<float>(sgx / static_cast<double>(k));
      // Pass 2: dx.
      const v8f mgv = splat(mg), mgxv = splat(mgx);
      int64_t j = 0;
      for (; j + kV <= k; j += kV) {
        const v8f xh = (load8(xr + j) - muv) * rv;
        const v8f g = load8(dy + j) * load8(wt + j);
        store8(dx + j, rv * (g - mgv - xh * mgxv));
      }
      for (; j < k; ++j) {
        const float xh = (xr[j] - mu) * rstd;
        dx[j] = rstd * (dy[j] * wt[j] - mg - xh * mgx);
      }
    }
  }
  if (!params) return;
  for (int64_t j = 0; j < k; ++j) {
    float sw = 0, sb = 0;
    for (int t = 0; t < threads; ++t) {
      sw += part[static_cast<size_t>(t) * 2 * k + j];
      sb += part[static_cast<size_t>(t) * 2 * k + k + j];
    }
    if (pdw) pdw[j] = sw;
    if (pdb) pdb[j] = sb;
  }
}

void group_norm_forward(const Tensor& y, const Tensor& mean, const Tensor& rstd, const Tensor& x,
                        const Tensor& weight, const Tensor& bias, int64_t groups, double eps) {
  const int64_t n = x.size(0), c = x.size(1), hw = c > 0 && n > 0 ? x.numel() / (n * c) : 0;
  const int64_t cpg = c / groups, m = cpg * hw;
  const float* px = x.data<float>();
  float* py = y.data<float>();
  float* pm = mean.data<float>();
  float* pr = rstd.data<float>();
  const float* w = weight.defined() ? weight.data<float>() : nullptr;
  const float* b = bias.defined() ? bias.data<float>() : nullptr;
#pragma omp parallel for if (x.numel() > kGrain && n * groups > 1)
  for (int64_t ng = 0; ng < n * groups; ++ng) {
    const int64_t g = ng % groups;
    const float* xg = px + ng * m;  // a group's channels are contiguous
    float* yg = py + ng * m;
    double s = 0;
    for (int64_t i = 0; i < m; ++i) s += xg[i];
    const double mu = m > 0 ? s / static_cast<double>(m) : 0.0;
    double ss = 0;
    for (int64_t i = 0; i < m; ++i) ss += (xg[i] - mu) * (xg[i] - mu);
    const double r = 1.0 / std::sqrt((m > 0 ? ss / static_cast<double>(m) : 0.0) + eps);
    pm[ng] = static_cast<float>(mu);
    pr[ng] = static_cast<float>(r);
    for (int64_t cc = 0; cc < cpg; ++cc) {
      const int64_t ch = g * cpg + cc;
      const float a = static_cast<float>(r) * (w ? w[ch] : 1.0f);
      const float sh = (b ? b[ch] : 0.0f) - static_cast<float>(mu) * a;
      const float* xr = xg + cc * hw;
      float* yr = yg + cc * hw;
      for (int64_t i = 0; i < hw; ++i) yr[i] = xr[i] * a + sh;
    }
  }
}

// With xhat = (x - mean) * rstd and dxhat = gy * w, per group of M elements:
// gx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)). Per-(n, c) sums of gy and
// gy * x make every group and parameter sum one pass over channels.
void group_norm_backward(const Tensor& gx, const Tensor& gw, const Tensor& gb, const Tensor& gy,
                         const Tensor& x, const Tensor& mean, const Tensor& rstd,
                         const Tensor& weight, int64_t groups) {
  const int64_t n = x.size(0), c = x.size(1), hw = c > 0 && n > 0 ? x.numel() / (n * c) : 0;
  const int64_t cpg = c / groups, m = cpg * hw;
  const float* px = x.data<float>();
  const float* pg = gy.data<float>();
  const float* pm = mean.data<float>();
  const float* pr = rstd.data<float>();
  const float* w = weight.defined() ? weight.data<float>() : nullptr;
  std::vector<double> sdy(static_cast<size_t>(n * c)), sdyx(static_cast<size_t>(n * c));
#pragma omp parallel for if (x.numel() > kGrain && n * c > 1)
  for (int64_t nc = 0; nc < n * c; ++nc) {
    const float* xr = px + nc * hw;
    const float* gr = pg + nc * hw;
    double a = 0, bb = 0;
    for (int64_t i = 0; i < hw; ++i) {
      a += gr[i];
      bb += static_cast<double>(gr[i]) * xr[i];
    }
    sdy[nc] = a;
    sdyx[nc] = bb;
  }
  if (gx.defined()) {
    float* out = gx.data<float>();
#pragma omp parallel for if (x.numel() > kGrain && n * groups > 1)
    for (int64_t ng = 0; ng < n * groups; ++ng) {
      const int64_t nn = ng / groups, g = ng % groups;
      const double mu = pm[ng], r = pr[ng];
      double sw = 0, swx = 0;  // sums of dxhat and of dxhat * x over the group
      for (int64_t cc = 0; cc < cpg; ++cc) {
        const int64_t ch = g * cpg + cc;
        const double wc = w ? w[ch] : 1.0;
        sw += wc * sdy[nn * c + ch];
        swx += wc * sdyx[nn * c + ch];
      }
      const double a = sw / static_cast<double>(m);
      const double bcoef = r * (swx - mu * sw) / static_cast<double>(m);
      for (int64_t cc = 0; cc < cpg; ++cc) {
        const int64_t ch = g * cpg + cc;
        const float wc = w ? w[ch] : 1.0f;
        const int64_t base = (nn * c + ch) * hw;
        for (int64_t i = 0; i < hw; ++i) {
          const double xhat = (px[base + i] - mu) * r;
          out[base + i] = static_cast<float>(r * (pg[base + i] * wc - a - xhat * bcoef));
        }
      }
    }
  }
  if (gw.defined() || gb.defined()) {
    float* ow = gw.defined() ? gw.data<float>() : nullptr;
    float* ob = gb.defined() ? gb.data<float>() : nullptr;
    for (int64_t ch = 0; ch < c; ++ch) {
      const int64_t g = ch / cpg;
      double aw = 0, ab = 0;
      for (int64_t nn = 0; nn < n; ++nn) {
        const int64_t ng = nn * groups + g;
        aw += pr[ng] * (sdyx[nn * c + ch] - pm[ng] * sdy[nn * c + ch]);
        ab += sdy[nn * c + ch];
      }
      if (ow) ow[ch] = static_cast<float>(aw);
      if (ob) ob[ch] = static_cast<float>(ab);
    }
  }
}

}  // namespace oar::cpu
