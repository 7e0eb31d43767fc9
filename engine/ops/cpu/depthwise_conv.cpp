#include "engine/ops/cpu/depthwise_conv.h"

#include <omp.h>

#include <algorithm>
#include <vector>

#include "engine/ops/cpu/loops.h"
#include "engine/ops/cpu/vec8.h"

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

// Stride-1 fast paths (vectorised over output columns with GCC/Clang vector types: AVX2 under
// the project's x86-64-v3 flags). Each output element sums its taps in a register in the same
// order (bias first, then taps row by row) as the plain loops, so the vector and scalar columns
// of a row round identically.

// One plane of a correlation with column stride 1:
// out[o][q] = init + sum_{i,j} k[i][j] * in[o * sh - ph + i * dh][q - pw + j * dw]
// (in is zero outside [0, ih) x [0, iw)). KW > 0 fixes kw at compile time.
struct Corr {
  int64_t ih, iw, oh, ow, kh, kw, sh, dh, dw, ph, pw;
};

// Taps [i0, i1) of output row o land inside [0, ih) (rows grow with i, so they are a range).
inline void tap_rows(const Corr& c, int64_t o, int64_t& i0, int64_t& i1) {
  const int64_t r0 = o * c.sh - c.ph;  // row of tap 0
  i0 = r0 >= 0 ? 0 : (-r0 + c.dh - 1) / c.dh;
  i1 = c.ih - 1 - r0 < 0 ? 0 : (c.ih - 1 - r0) / c.dh + 1;
  i1 = std::min(i1, c.kh);
  i0 = std::min(i0, i1);
}

// wv: the kh * kw taps, each splat to a vector. KW > 0 fixes kw at compile time.
template <int KW>
void corr_plane(const Corr& geom, const float* in, const v8f* wv, float init, float* out) {
  const Corr c = geom;  // a local copy: the stores to out cannot alias it
  const int64_t kw = KW > 0 ? KW : c.kw;
  const int64_t off_max = (kw - 1) * c.dw - c.pw;  // column offset of the last tap
  // Columns [qa, qb) have every tap inside the row.
  const int64_t qa = std::clamp<int64_t>(c.pw, 0, c.ow);
  const int64_t qb = std::clamp<int64_t>(c.iw - off_max, qa, c.ow);
  const int64_t row_step = c.dh * c.iw;
  // With row stride 1 and rows of one length (iw == ow), tap (i, j) of flat output element p
  // reads in[p + (i * dh - ph) * iw + j * dw - pw]: rows [oa, ob), whose taps are all inside,
  // run as one flat range, and their edge columns (which that wraps into the neighbouring rows)
  // are recomputed below.
  int64_t oa = 0, ob = 0;
  if (c.sh == 1 && c.iw == c.ow) {
    oa = std::clamp<int64_t>(c.ph, 0, c.oh);
    ob = std::clamp<int64_t>(c.ih - (c.kh - 1) * c.dh + c.ph, oa, c.oh);
    if (ob == oa || qb - qa < 1 || (ob - 1) * c.ow + qb - (oa * c.ow + qa) < 2 * kV) oa = ob = 0;
  }
  if (ob > oa) {
    const int64_t p0 = oa * c.ow + qa, p1 = (ob - 1) * c.ow + qb;
    auto flat = [&](int64_t p) {  // flat elements [p, p + 16)
      v8f a = splat(init), b = a;
      for (int64_t i = 0; i < c.kh; ++i) {
        const float* xr = in + (p + (i * c.dh - c.ph) * c.iw - c.pw);
        for (int64_t j = 0; j < kw; ++j) {
          a += wv[i * kw + j] * load8(xr + j * c.dw);
          b += wv[i * kw + j] * load8(xr + j * c.dw + kV);
        }
      }
      store8(out + p, a);
      store8(out + p + kV, b);
    };
    int64_t p = p0;
    for (; p + 2 * kV <= p1; p += 2 * kV) flat(p);
    if (p < p1) flat(p1 - 2 * kV);  // overlaps elements already written, with the same values
  }
  for (int64_t o = 0; o < c.oh; ++o) {
    float* orow = out + o * c.ow;
    int64_t i0, i1;
    tap_rows(c, o, i0, i1);
    // Column q of tap (i, j) of this row: base[(i - i0) * row_step + q + j * dw].
    const float* base = in + (o * c.sh - c.ph + i0 * c.dh) * c.iw - c.pw;
    auto scalar = [&](int64_t q) {
      float s = init;
      for (int64_t i = i0; i < i1; ++i) {
        const float* xr = base + (i - i0) * row_step;
        for (int64_t j = 0; j < kw; ++j) {
          const int64_t col = q - c.pw + j * c.dw;
          if (col >= 0 && col < c.iw) s += wv[i * kw + j][0] * xr[q + j * c.dw];
        }
      }
      orow[q] = s;
    };
    auto vec2 = [&](int64_t q) {  // columns [q, q + 16)
      v8f a = splat(init), b = a;
      for (int64_t i = i0; i < i1; ++i) {
        const float* xr = base + (i - i0) * row_step + q;
        for (int64_t j = 0; j < kw; ++j) {
          a += wv[i * kw + j] * load8(xr + j * c.dw);
          b += wv[i * kw + j] * load8(xr + j * c.dw + kV);
        }
      }
      store8(orow + q, a);
      store8(orow + q + kV, b);
    };
    auto vec = [&](int64_t q) {  // columns [q, q + 8)
      v8f a = splat(init);
      for (int64_t i = i0; i < i1; ++i) {
        const float* xr = base + (i - i0) * row_step + q;
        for (int64_t j = 0; j < kw; ++j) a += wv[i * kw + j] * load8(xr + j * c.dw);
      }
      store8(orow + q, a);
    };
    for (int64_t q = 0; q < qa; ++q) scalar(q);
    if (o >= oa && o < ob) {  // done by the flat pass but for the edge columns
      for (int64_t q = qb; q < c.ow; ++q) scalar(q);
      continue;
    }
    if (qb - qa >= kV) {
      // Vectors cover [qa, qb); the last one may overlap columns already written, with the
      // same values.
      int64_t q = qa;
      for (; q + 2 * kV <= qb; q += 2 * kV) vec2(q);
      if (q < qb) {
        if (qb - q > kV && qb - 2 * kV >= qa)
          vec2(qb - 2 * kV);
        else {
          if (qb - q > kV) vec(q);
          vec(qb - kV);
        }
      }
    } else {
      for (int64_t q = qa; q < qb; ++q) scalar(q);
    }
    for (int64_t q = qb; q < c.ow; ++q) scalar(q);
  }
}

// One plane; k: the kh * kw taps, splat into wv (kh * kw vectors of scratch).
void corr(const Corr& c, const float* in, const float* k, v8f* wv, float init, float* out) {
  for (int64_t t = 0; t < c.kh * c.kw; ++t) wv[t] = splat(k[t]);
  switch (c.kw) {
    case 3:
      return corr_plane<3>(c, in, wv, init, out);
    case 5:
      return corr_plane<5>(c, in, wv, init, out);
    case 7:
      return corr_plane<7>(c, in, wv, init, out);
    default:
      return corr_plane<0>(c, in, wv, init, out);
  }
}

// Column-stride-1 weight gradient of one plane pair: acc[i * KW + j] += sum over (o, q) of
// gy[o][q] * x[o * sh - ph + i * dh][q - pw + j * dw] (c.ih/iw: x's plane, c.oh/ow: gy's).
// va (kh * KW vectors) and sa (kh * KW floats) are scratch.
template <int KW>
void wgrad_plane(const Corr& geom, const float* x, const float* gy, v8f* va, float* sa,
                 double* acc) {
  const Corr c = geom;
  const int64_t n_taps = c.kh * KW;
  std::fill(va, va + n_taps, v8f{});
  std::fill(sa, sa + n_taps, 0.0f);
  const int64_t off_max = (KW - 1) * c.dw - c.pw;
  const int64_t qa = std::clamp<int64_t>(c.pw, 0, c.ow);
  const int64_t qb = std::clamp<int64_t>(c.iw - off_max, qa, c.ow);
  const int64_t qv = qa + (qb - qa) / kV * kV;  // vector columns [qa, qv)
  int64_t lo[KW], hi[KW];
  for (int64_t j = 0; j < KW; ++j) {
    lo[j] = std::clamp<int64_t>(c.pw - j * c.dw, 0, c.ow);
    hi[j] = std::clamp<int64_t>(c.iw + c.pw - j * c.dw, lo[j], c.ow);
  }
  for (int64_t o = 0; o < c.oh; ++o) {
    const float* g = gy + o * c.ow;
    int64_t i0, i1;
    tap_rows(c, o, i0, i1);
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t r = o * c.sh - c.ph + i * c.dh;
      const float* xr = x + r * c.iw - c.pw;  // column q of tap j: xr[q + j * dw]
      v8f a[KW] = {}, b[KW] = {};
      int64_t q = qa;
      for (; q + 2 * kV <= qv; q += 2 * kV) {
        const v8f g0 = load8(g + q), g1 = load8(g + q + kV);
        for (int64_t j = 0; j < KW; ++j) {
          a[j] += g0 * load8(xr + q + j * c.dw);
          b[j] += g1 * load8(xr + q + kV + j * c.dw);
        }
      }
      if (q < qv) {
        const v8f g0 = load8(g + q);
        for (int64_t j = 0; j < KW; ++j) a[j] += g0 * load8(xr + q + j * c.dw);
      }
      for (int64_t j = 0; j < KW; ++j) {
        va[i * KW + j] += a[j] + b[j];
        float s = 0;
        for (int64_t t = lo[j]; t < std::min(qa, hi[j]); ++t) s += g[t] * xr[t + j * c.dw];
        for (int64_t t = std::max(qv, lo[j]); t < hi[j]; ++t) s += g[t] * xr[t + j * c.dw];
        sa[i * KW + j] += s;
      }
    }
  }
  for (int64_t t = 0; t < n_taps; ++t) acc[t] += static_cast<double>(hsum(va[t]) + sa[t]);
}

// Dot product of n floats.
float dot(const float* a, const float* b, int64_t n) {
  v8f s0 = {}, s1 = {}, s2 = {}, s3 = {};
  int64_t q = 0;
  for (; q + 4 * kV <= n; q += 4 * kV) {
    s0 += load8(a + q) * load8(b + q);
    s1 += load8(a + q + kV) * load8(b + q + kV);
    s2 += load8(a + q + 2 * kV) * load8(b + q + 2 * kV);
    s3 += load8(a + q + 3 * kV) * load8(b + q + 3 * kV);
  }
  for (; q + kV <= n; q += kV) s0 += load8(a + q) * load8(b + q);
  float s = hsum((s0 + s1) + (s2 + s3));
  for (; q < n; ++q) s += a[q] * b[q];
  return s;
}

// Weight gradient of one plane pair with row stride 1 and iw == ow: as in corr_plane, tap
// (i, j) pairs flat gy element p with x[p + (i * dh - ph) * iw + j * dw - pw], so its sum is
// one dot product over a flat range, with gy zeroed (a copy in gm, kw planes of scratch) at the
// columns where tap j falls outside the row.
void wgrad_flat(const Corr& geom, const float* x, const float* gy, float* gm, double* acc) {
  const Corr c = geom;
  const int64_t np = c.oh * c.ow;
  for (int64_t j = 0; j < c.kw; ++j) {
    const int64_t lo = std::clamp<int64_t>(c.pw - j * c.dw, 0, c.ow);
    const int64_t hi = std::clamp<int64_t>(c.iw + c.pw - j * c.dw, lo, c.ow);
    if (hi == lo) continue;
    const float* g = gy;
    if (lo > 0 || hi < c.ow) {
      float* m = gm + j * np;
      for (int64_t o = 0; o < c.oh; ++o) {
        const float* gr = gy + o * c.ow;
        float* mr = m + o * c.ow;
        std::fill(mr, mr + lo, 0.0f);
        std::copy(gr + lo, gr + hi, mr + lo);
        std::fill(mr + hi, mr + c.ow, 0.0f);
      }
      g = m;
    }
    for (int64_t i = 0; i < c.kh; ++i) {
      // Output rows whose tap row i is inside [0, ih).
      const int64_t o_lo = std::clamp<int64_t>(c.ph - i * c.dh, 0, c.oh);
      const int64_t o_hi = std::clamp<int64_t>(c.ih + c.ph - i * c.dh, o_lo, c.oh);
      if (o_hi == o_lo) continue;
      const int64_t p0 = o_lo * c.ow + lo, p1 = (o_hi - 1) * c.ow + hi;
      const float* xs = x + (p0 + (i * c.dh - c.ph) * c.iw + j * c.dw - c.pw);
      acc[i * c.kw + j] += static_cast<double>(dot(g + p0, xs, p1 - p0));
    }
  }
}

// Sum of a plane of n floats.
float plane_sum(const float* p, int64_t n) {
  v8f a = {};
  int64_t q = 0;
  for (; q + kV <= n; q += kV) a += load8(p + q);
  float s = hsum(a);
  for (; q < n; ++q) s += p[q];
  return s;
}

// Fills the fast path's weight gradient of channel ch when kw has a specialisation.
bool wgrad_channel(const Corr& c, const float* x, const float* gy, int64_t n, int64_t nc_stride,
                   double* acc) {
  if (c.sh == 1 && c.iw == c.ow) {
    std::vector<float> gm(static_cast<size_t>(c.kw * c.oh * c.ow));
    for (int64_t b = 0; b < n; ++b)
      wgrad_flat(c, x + b * nc_stride * c.ih * c.iw, gy + b * nc_stride * c.oh * c.ow, gm.data(),
                 acc);
    return true;
  }
  std::vector<v8f> va(static_cast<size_t>(c.kh * c.kw));
  std::vector<float> sa(static_cast<size_t>(c.kh * c.kw));
  auto run = [&](auto plane) {
    for (int64_t b = 0; b < n; ++b)
      plane(c, x + b * nc_stride * c.ih * c.iw, gy + b * nc_stride * c.oh * c.ow, va.data(),
            sa.data(), acc);
    return true;
  };
  switch (c.kw) {
    case 1:
      return run(wgrad_plane<1>);
    case 2:
      return run(wgrad_plane<2>);
    case 3:
      return run(wgrad_plane<3>);
    case 4:
      return run(wgrad_plane<4>);
    case 5:
      return run(wgrad_plane<5>);
    case 7:
      return run(wgrad_plane<7>);
    default:
      return false;
  }
}

// Small planes (at most kSmallPlane outputs, e.g. MobileNetV2's 4x4 and 2x2 maps): vectors run
// across channels instead of along a plane's few columns. Per batch element the [C, H*W] planes
// are transposed to [H*W, C] and the kernel to [taps, C]; the loops over channels are plain
// (the compiler vectorises them). All three walk the taps, then each tap's output positions
// (tap_pairs), so forward and backward-data add their terms to each element in the plain loops'
// order (bias, then taps row by row) and give the same bits; the weight gradient sums each batch
// element's plane in float and the batch in double, per thread in batch order, then the threads in
// order (deterministic for a given thread count).
constexpr int64_t kSmallPlane = 16;

bool small_planes(const Plane& p, int64_t c) {
  return p.oh * p.ow <= kSmallPlane && p.h * p.w <= 4 * kSmallPlane && c >= 16;
}

// [rows, cols] -> [cols, rows].
void transpose(const float* __restrict src, int64_t rows, int64_t cols, float* __restrict dst) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < cols; ++k) dst[k * rows + r] = src[r * cols + k];
}

// Kernel [C, taps] -> [taps, C].
std::vector<float> taps_by_channel(const float* w, int64_t c, int64_t taps) {
  std::vector<float> wt(static_cast<size_t>(taps * c));
  transpose(w, c, taps, wt.data());
  return wt;
}

// f(o, r, lo, hi, off) for every output row o that tap (i, j) reads inside the plane, in
// increasing order: it reads input row r (Plane::in_row), and its output columns [lo, hi)
// (Plane::cols) read input columns q * sw + off.
template <class F>
void tap_rows(const Plane& p, int64_t i, int64_t j, F&& f) {
  int64_t lo, hi;
  p.cols(j, lo, hi);
  const int64_t off = j * p.dw - p.pw;
  for (int64_t o = 0; o < p.oh; ++o) {
    const int64_t r = p.in_row(o, i);
    if (r >= 0) f(o, r, lo, hi, off);
  }
}

// f(output position, input position) for every output that tap (i, j) reads inside the plane,
// output positions in increasing order.
template <class F>
void tap_pairs(const Plane& p, int64_t i, int64_t j, F&& f) {
  tap_rows(p, i, j, [&](int64_t o, int64_t r, int64_t lo, int64_t hi, int64_t off) {
    for (int64_t q = lo; q < hi; ++q) f(o * p.ow + q, r * p.w + q * p.sw + off);
  });
}

// dst planes = bias (or 0) + the sum over taps of the tap's weight times src, per batch element.
// Forward pairs dst's output position with src's input position; backward-data (`to_input`)
// the other way round: dL/dx from dL/dy.
void small_taps(const Plane& p, int64_t n, int64_t c, const float* src, const float* pw,
                const float* pb, bool to_input, float* dst) {
  const int64_t hw = p.h * p.w, ohw = p.oh * p.ow;
  const int64_t src_plane = to_input ? ohw : hw, dst_plane = to_input ? hw : ohw;
  const std::vector<float> wt = taps_by_channel(pw, c, p.kh * p.kw);
#pragma omp parallel if (n * c * dst_plane > kGrain && n > 1)
  {
    std::vector<float> st(static_cast<size_t>(src_plane * c));
    std::vector<float> dt(static_cast<size_t>(dst_plane * c));
#pragma omp for schedule(static)
    for (int64_t b = 0; b < n; ++b) {
      transpose(src + b * c * src_plane, c, src_plane, st.data());
      for (int64_t e = 0; e < dst_plane; ++e)
        for (int64_t ch = 0; ch < c; ++ch) dt[e * c + ch] = pb ? pb[ch] : 0.0f;
      for (int64_t i = 0; i < p.kh; ++i)
        for (int64_t j = 0; j < p.kw; ++j) {
          const float* __restrict ws = wt.data() + (i * p.kw + j) * c;
          tap_pairs(p, i, j, [&](int64_t out_e, int64_t in_e) {
            float* __restrict d = dt.data() + (to_input ? in_e : out_e) * c;
            const float* __restrict v = st.data() + (to_input ? out_e : in_e) * c;
            for (int64_t ch = 0; ch < c; ++ch) d[ch] += ws[ch] * v[ch];
          });
        }
      transpose(dt.data(), dst_plane, c, dst + b * c * dst_plane);
    }
  }
}

void small_backward_weights(const Plane& p, int64_t n, int64_t c, const float* px, const float* pg,
                            float* pdw, float* pdb) {
  const int64_t hw = p.h * p.w, ohw = p.oh * p.ow, taps = p.kh * p.kw;
  const int threads = n * c * hw > kGrain && n > 1 ? omp_get_max_threads() : 1;
  // Per thread: taps * c weight sums, then c bias sums, in double.
  std::vector<double> acc(static_cast<size_t>(threads * (taps + 1) * c), 0.0);
#pragma omp parallel num_threads(threads)
  {
    double* a = acc.data() + omp_get_thread_num() * (taps + 1) * c;
    std::vector<float> xt(static_cast<size_t>(hw * c)), gt(static_cast<size_t>(ohw * c));
    std::vector<float> part(static_cast<size_t>(c));
#pragma omp for schedule(static)
    for (int64_t b = 0; b < n; ++b) {
      transpose(px + b * c * hw, c, hw, xt.data());
      transpose(pg + b * c * ohw, c, ohw, gt.data());
      for (int64_t i = 0; i < p.kh; ++i)
        for (int64_t j = 0; j < p.kw; ++j) {
          std::fill(part.begin(), part.end(), 0.0f);
          float* __restrict s = part.data();
          tap_pairs(p, i, j, [&](int64_t out_e, int64_t in_e) {
            const float* __restrict xs = xt.data() + in_e * c;
            const float* __restrict gs = gt.data() + out_e * c;
            for (int64_t ch = 0; ch < c; ++ch) s[ch] += gs[ch] * xs[ch];
          });
          double* at = a + (i * p.kw + j) * c;
          for (int64_t ch = 0; ch < c; ++ch) at[ch] += s[ch];
        }
      if (pdb) {
        std::fill(part.begin(), part.end(), 0.0f);
        for (int64_t e = 0; e < ohw; ++e)
          for (int64_t ch = 0; ch < c; ++ch) part[ch] += gt[e * c + ch];
        double* ab = a + taps * c;
        for (int64_t ch = 0; ch < c; ++ch) ab[ch] += part[ch];
      }
    }
  }
  for (int t = 1; t < threads; ++t)
    for (int64_t e = 0; e < (taps + 1) * c; ++e) acc[e] += acc[t * (taps + 1) * c + e];
  for (int64_t ch = 0; ch < c; ++ch) {
    for (int64_t t = 0; t < taps; ++t) pdw[ch * taps + t] = static_cast<float>(acc[t * c + ch]);
    if (pdb) pdb[ch] = static_cast<float>(acc[taps * c + ch]);
  }
}

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
  if (small_planes(p, c)) return small_taps(p, n, c, px, pw, pb, false, po);
  if (p.sw == 1) {
    const Corr k{p.h, p.w, p.oh, p.ow, p.kh, p.kw, p.sh, p.dh, p.dw, p.ph, p.pw};
#pragma omp parallel if (out.numel() > kGrain && n * c > 1)
    {
      std::vector<v8f> wv(static_cast<size_t>(p.kh * p.kw));
#pragma omp for schedule(static)
      for (int64_t nc = 0; nc < n * c; ++nc) {
        const int64_t ch = nc % c;
        corr(k, px + nc * p.h * p.w, pw + ch * p.kh * p.kw, wv.data(), pb ? pb[ch] : 0.0f,
             po + nc * p.oh * p.ow);
      }
    }
    return;
  }
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
        tap_rows(p, i, j, [&](int64_t o, int64_t r, int64_t lo, int64_t hi, int64_t off) {
          const float* xr = xp + r * p.w + off;
          float* orow = op + o * p.ow;  // column stride > 1: stride 1 returned above
          for (int64_t q = lo; q < hi; ++q) orow[q] += wv * xr[q * p.sw];
        });
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
  if (small_planes(p, c)) return small_taps(p, n, c, pg, pw, nullptr, true, pdx);
  if (p.sh == 1 && p.sw == 1) {
    // gx is the correlation of gy with the flipped kernel, padded by dilation * (k - 1) - pad.
    const Corr k{p.oh,
                 p.ow,
                 p.h,
                 p.w,
                 p.kh,
                 p.kw,
                 1,
                 p.dh,
                 p.dw,
                 p.dh * (p.kh - 1) - p.ph,
                 p.dw * (p.kw - 1) - p.pw};
    const int64_t taps = p.kh * p.kw;
#pragma omp parallel if (gx.numel() > kGrain && n * c > 1)
    {
      std::vector<float> flipped(static_cast<size_t>(taps));
      std::vector<v8f> wv(static_cast<size_t>(taps));
#pragma omp for schedule(static)
      for (int64_t nc = 0; nc < n * c; ++nc) {
        const float* wp = pw + (nc % c) * taps;
        for (int64_t t = 0; t < taps; ++t) flipped[t] = wp[taps - 1 - t];
        corr(k, pg + nc * p.oh * p.ow, flipped.data(), wv.data(), 0.0f, pdx + nc * p.h * p.w);
      }
    }
    return;
  }
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
        tap_rows(p, i, j, [&](int64_t o, int64_t r, int64_t lo, int64_t hi, int64_t off) {
          float* dr = dp + r * p.w + off;
          const float* grow = gp + o * p.ow;
          if (p.sw == 1)
            for (int64_t q = lo; q < hi; ++q) dr[q] += wv * grow[q];
          else
            for (int64_t q = lo; q < hi; ++q) dr[q * p.sw] += wv * grow[q];
        });
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
  if (small_planes(p, c)) return small_backward_weights(p, n, c, px, pg, pdw, pdb);
#pragma omp parallel for schedule(static) if (x.numel() > kGrain && c > 1)
  for (int64_t ch = 0; ch < c; ++ch) {
    std::vector<double> acc(p.kh * p.kw, 0.0);
    double bias_acc = 0;
    const bool fast =
        p.sw == 1 &&
        wgrad_channel(Corr{p.h, p.w, p.oh, p.ow, p.kh, p.kw, p.sh, p.dh, p.dw, p.ph, p.pw},
                      px + ch * p.h * p.w, pg + ch * p.oh * p.ow, n, c, acc.data());
    for (int64_t b = 0; b < n; ++b) {
      const float* xp = px + (b * c + ch) * p.h * p.w;
      const float* gp = pg + (b * c + ch) * p.oh * p.ow;
      if (pdb) bias_acc += plane_sum(gp, p.oh * p.ow);
      if (fast) continue;
      for (int64_t i = 0; i < p.kh; ++i)
        for (int64_t j = 0; j < p.kw; ++j) {
          float s = 0;
          tap_rows(p, i, j, [&](int64_t o, int64_t r, int64_t lo, int64_t hi, int64_t off) {
            const float* xr = xp + r * p.w + off;
            const float* grow = gp + o * p.ow;
            float t = 0;
            if (p.sw == 1)
              for (int64_t q = lo; q < hi; ++q) t += grow[q] * xr[q];
            else
              for (int64_t q = lo; q < hi; ++q) t += grow[q] * xr[q * p.sw];
            s += t;
          });
          acc[i * p.kw + j] += s;
        }
    }
    for (int64_t k = 0; k < p.kh * p.kw; ++k)
      pdw[ch * p.kh * p.kw + k] = static_cast<float>(acc[k]);
    if (pdb) pdb[ch] = static_cast<float>(bias_acc);
  }
}

}  // namespace oar::cpu
