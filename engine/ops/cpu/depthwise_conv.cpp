#include "engine/ops/cpu/depthwise_conv.h"

#include <algorithm>
#include <vector>

#include "engine/ops/cpu/loops.h"

namespace oar::cpu {

namespace {

// Geometry of one plane and the output columns [lo, hi) whose tap kw lands inside the row.
struct Plane {
  int64_t h, w, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw;

  Plane(const Tensor& x, const Tensor& w_or_gw, const Shape& out, const ConvGeometry& g)
      : h(x.size(2)),
        w(x.size(3)),
        oh(out[2]),
        ow(out[3]),
        kh(w_or_gw.size(2)),
        kw(w_or_gw.size(3)),
        sh(g.stride[0]),
        sw(g.stride[1]),
        ph(g.pad_begin[0]),
        pw(g.pad_begin[1]),
        dh(g.dilation[0]),
        dw(g.dilation[1]) {}

  // Input row of output row o at tap i, or -1 when it falls in the padding.
  int64_t in_row(int64_t o, int64_t i) const {
    const int64_t r = o * sh - ph + i * dh;
    return r >= 0 && r < h ? r : -1;
  }
  // Output columns whose tap j reads inside [0, w): [lo, hi).
  void cols(int64_t j, int64_t& lo, int64_t& hi) const {
    const int64_t off = j * dw - pw;  // input column = ow * sw + off
    lo = off >= 0 ? 0 : (-off + sw - 1) / sw;
    hi = w - 1 - off < 0 ? 0 : (w - 1 - off) / sw + 1;
    hi = std::min(hi, ow);
    lo = std::min(lo, hi);
  }
};

}  // namespace

bool plain_depthwise(const Tensor& x, const Tensor& w, const ConvGeometry& g) {
  return x.dim() == 4 && w.dim() == 4 && x.dtype() == DType::f32 && w.dtype() == DType::f32 &&
         g.groups > 1 && x.size(1) == g.groups && w.size(0) == g.groups && w.size(1) == 1 &&
         x.is_contiguous() && w.is_contiguous();
}

void depthwise_forward(const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias,
                       const ConvGeometry& g) {
  const Plane p(x, w, out.shape(), g);
  const int64_t n = x.size(0), c = x.size(1);
  const float* px = x.data<float>();
  const float* pw = w.data<float>();
  const float* pb = bias.defined() ? bias.data<float>() : nullptr;
  float* po = out.data<float>();
#pragma omp parallel for schedule(static) if (out.numel() > kGrain && n * c > 1)
  for (int64_t nc = 0; nc < n * c; ++nc) {
    const int64_t ch = nc % c;
    const float* xp = px + nc * p.h * p.w;
    const float* wp = pw + ch * p.kh * p.kw;
    float* op = po + nc * p.oh * p.ow;
    std::fill(op, op + p.oh * p.ow, pb ? pb[ch] : 0.0f);
    for (int64_t i = 0; i < p.kh; ++i)
      for (int64_t j = 0; j < p.kw; ++j) {
        const float wv = wp[i * p.kw + j];
        int64_t lo, hi;
        p.cols(j, lo, hi);
        const int64_t off = j * p.dw - p.pw;
        for (int64_t o = 0; o < p.oh; ++o) {
          const int64_t r = p.in_row(o, i);
          if (r < 0) continue;
          const float* xr = xp + r * p.w + off;
          float* orow = op + o * p.ow;
          if (p.sw == 1)
            for (int64_t q = lo; q < hi; ++q) orow[q] += wv * xr[q];
          else
            for (int64_t q = lo; q < hi; ++q) orow[q] += wv * xr[q * p.sw];
        }
      }
  }
}

void depthwise_backward_data(const Tensor& gx, const Tensor& gy, const Tensor& w,
                             const ConvGeometry& g) {
  const Plane p(gx, w, gy.shape(), g);
  const int64_t n = gx.size(0), c = gx.size(1);
  const float* pg = gy.data<float>();
  const float* pw = w.data<float>();
  float* pdx = gx.data<float>();
#pragma omp parallel for schedule(static) if (gx.numel() > kGrain && n * c > 1)
  for (int64_t nc = 0; nc < n * c; ++nc) {
    const int64_t ch = nc % c;
    const float* gp = pg + nc * p.oh * p.ow;
    const float* wp = pw + ch * p.kh * p.kw;
    float* dp = pdx + nc * p.h * p.w;
    std::fill(dp, dp + p.h * p.w, 0.0f);
    for (int64_t i = 0; i < p.kh; ++i)
      for (int64_t j = 0; j < p.kw; ++j) {
        const float wv = wp[i * p.kw + j];
        int64_t lo, hi;
        p.cols(j, lo, hi);
        const int64_t off = j * p.dw - p.pw;
        for (int64_t o = 0; o < p.oh; ++o) {
          const int64_t r = p.in_row(o, i);
          if (r < 0) continue;
          float* dr = dp + r * p.w + off;
          const float* grow = gp + o * p.ow;
          if (p.sw == 1)
            for (int64_t q = lo; q < hi; ++q) dr[q] += wv * grow[q];
          else
            for (int64_t q = lo; q < hi; ++q) dr[q * p.sw] += wv * grow[q];
        }
      }
  }
}

void depthwise_backward_weights(const Tensor& gw, const Tensor& gb, const Tensor& x,
                                const Tensor& gy, const ConvGeometry& g) {
  const Plane p(x, gw, gy.shape(), g);
  const int64_t n = x.size(0), c = x.size(1);
  const float* px = x.data<float>();
  const float* pg = gy.data<float>();
  float* pdw = gw.data<float>();
  float* pdb = gb.defined() ? gb.data<float>() : nullptr;
#pragma omp parallel for schedule(static) if (x.numel() > kGrain && c > 1)
  for (int64_t ch = 0; ch < c; ++ch) {
    std::vector<double> acc(p.kh * p.kw, 0.0);
    double bias_acc = 0;
    for (int64_t b = 0; b < n; ++b) {
      const float* xp = px + (b * c + ch) * p.h * p.w;
      const float* gp = pg + (b * c + ch) * p.oh * p.ow;
      for (int64_t i = 0; i < p.kh; ++i)
        for (int64_t j = 0; j < p.kw; ++j) {
          int64_t lo, hi;
          p.cols(j, lo, hi);
          const int64_t off = j * p.dw - p.pw;
          float s = 0;
          for (int64_t o = 0; o < p.oh; ++o) {
            const int64_t r = p.in_row(o, i);
            if (r < 0) continue;
            const float* xr = xp + r * p.w + off;
            const float* grow = gp + o * p.ow;
            float t = 0;
            if (p.sw == 1)
              for (int64_t q = lo; q < hi; ++q) t += grow[q] * xr[q];
            else
              for (int64_t q = lo; q < hi; ++q) t += grow[q] * xr[q * p.sw];
            s += t;
          }
          acc[i * p.kw + j] += s;
        }
      if (pdb) {
        float t = 0;
        for (int64_t q = 0; q < p.oh * p.ow; ++q) t += gp[q];
        bias_acc += t;
      }
    }
    for (int64_t k = 0; k < p.kh * p.kw; ++k)
      pdw[ch * p.kh * p.kw + k] = static_cast<float>(acc[k]);
    if (pdb) pdb[ch] = static_cast<float>(bias_acc);
  }
}

}  // namespace oar::cpu
