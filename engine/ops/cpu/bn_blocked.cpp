#include "engine/ops/cpu/bn_blocked.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "engine/ops/cpu/loops.h"
#include "engine/ops/cpu/vec8.h"

namespace oar::cpu {

namespace {

// The per-channel affine map of the forward, computed the same way in both directions so the
// recomputed activation mask matches the forward's output exactly.
struct Affine {
  float scale, shift, mean, rstd;
};

Affine affine_of(const float* mean, const float* var, const float* gamma, const float* beta,
                 int64_t c, double eps) {
  Affine a;
  a.mean = mean[c];
  a.rstd = static_cast<float>(1.0 / std::sqrt(static_cast<double>(var[c]) + eps));
  a.scale = (gamma ? gamma[c] : 1.0f) * a.rstd;
  a.shift = (beta ? beta[c] : 0.0f) - a.mean * a.scale;
  return a;
}

inline float activate(float z, ConvActivation act) {
  if (act == ConvActivation::none) return z;
  z = std::max(z, 0.0f);
  return act == ConvActivation::relu6 ? std::min(z, 6.0f) : z;
}

// Whether the activation passes the gradient, from its output.
inline bool passes(float out, ConvActivation act) {
  if (act == ConvActivation::none) return true;
  if (act == ConvActivation::relu) return out > 0.0f;
  return out > 0.0f && out < 6.0f;
}

// Positions per tile in the vectorised (compile-time block) paths: a tile of plain rows is
// transposed into [kTile][B] in a small buffer, so every lane loop runs over B contiguous floats.
constexpr int64_t kTile = 32;

typedef int32_t v8i __attribute__((vector_size(32)));

// a where m is set, else 0.
inline v8f keep(v8i m, v8f a) {
  return (v8f)((v8i)a & m);
}
template <ConvActivation A>
inline v8f act8(v8f z) {
  if (A == ConvActivation::none) return z;
  z = keep(z > splat(0.0f), z);
  if (A == ConvActivation::relu6) {
    const v8i m = z > splat(6.0f);
    z = (v8f)(((v8i)z & ~m) | ((v8i)splat(6.0f) & m));
  }
  return z;
}
// Where the activation passes the gradient, from its output (all lanes for none).
template <ConvActivation A>
inline v8i pass8(v8f o) {
  if (A == ConvActivation::relu) return o > splat(0.0f);
  if (A == ConvActivation::relu6) return (o > splat(0.0f)) & (o < splat(6.0f));
  return o == o || o != o;
}

// t[k][j] = rows[j][k0 + k] for the tile's kt positions and the block's valid lanes; lanes past
// `valid` are zero.
template <int B>
inline void gather_tile(const float* plain, int64_t row0, int64_t hw, int64_t k0, int64_t kt,
                        int64_t valid, float* t) {
  for (int64_t j = 0; j < valid; ++j) {
    const float* r = plain + row0 + j * hw + k0;
    for (int64_t k = 0; k < kt; ++k) t[k * B + j] = r[k];
  }
  for (int64_t j = valid; j < B; ++j)
    for (int64_t k = 0; k < kt; ++k) t[k * B + j] = 0.0f;
}

template <int B>
inline void scatter_tile(const float* t, int64_t row0, int64_t hw, int64_t k0, int64_t kt,
                         int64_t valid, float* plain) {
  for (int64_t j = 0; j < valid; ++j) {
    float* r = plain + row0 + j * hw + k0;
    for (int64_t k = 0; k < kt; ++k) r[k] = t[k * B + j];
  }
}

// Sums over (n, s) of f(v, j) for every lane j of channel block cb, into s[j] (double). B is
// the block when known at compile time (the lanes vectorise), else 0 and l.block is used.
template <int B, typename F>
void block_sums(const BlockedLayout& l, const float* y, int64_t cb, double* s, F f) {
  const int64_t b = B > 0 ? B : l.block;
  std::vector<float> acc(static_cast<size_t>(b));
  for (int64_t j = 0; j < b; ++j) s[j] = 0;
  for (int64_t n = 0; n < l.n; ++n) {
    const float* p = y + (n * l.blocks() + cb) * l.hw * b;
    std::fill(acc.begin(), acc.end(), 0.0f);
    float* a = acc.data();
    for (int64_t k = 0; k < l.hw; ++k, p += b)
      for (int64_t j = 0; j < b; ++j) a[j] += f(p[j], j);
    for (int64_t j = 0; j < b; ++j) s[j] += a[j];
  }
}

// The forward's output pass for a compile-time block: lanes in eight-float vectors, tiles of the
// plain output (and residual) transposed through a small buffer.
template <int B, ConvActivation A>
void forward_tiled(const BlockedLayout& l, const float* y, const std::vector<Affine>& af,
                   const float* residual, float* out, int64_t cb, int64_t valid) {
  const int64_t c0 = cb * B;
  alignas(64) float sc[B] = {}, sh[B] = {};
  for (int64_t j = 0; j < valid; ++j) sc[j] = af[j].scale, sh[j] = af[j].shift;
  alignas(64) float r[kTile * B], z[kTile * B];
  for (int64_t n = 0; n < l.n; ++n) {
    const float* base = y + (n * l.blocks() + cb) * l.hw * B;
    const int64_t row0 = (n * l.c + c0) * l.hw;
    for (int64_t k0 = 0; k0 < l.hw; k0 += kTile) {
      const int64_t kt = std::min(kTile, l.hw - k0);
      if (residual) gather_tile<B>(residual, row0, l.hw, k0, kt, valid, r);
      for (int64_t k = 0; k < kt; ++k) {
        const float* p = base + (k0 + k) * B;
        for (int j = 0; j < B; j += kV) {
          v8f v = load8(p + j) * load8(sc + j) + load8(sh + j);
          if (residual) v += load8(r + k * B + j);
          store8(z + k * B + j, act8<A>(v));
        }
      }
      scatter_tile<B>(z, row0, l.hw, k0, kt, valid, out);
    }
  }
}

template <int B>
void forward_block(const BlockedLayout& l, const float* y, float* mean, float* var,
                   const float* gamma, const float* beta, const float* residual, float* out,
                   ConvActivation act, double eps, int64_t cb) {
  const int64_t b = B > 0 ? B : l.block;
  const int64_t c0 = cb * b, valid = std::min(b, l.c - c0);
  const double count = static_cast<double>(l.n * l.hw);
  std::vector<double> s(static_cast<size_t>(b));
  std::vector<float> m(static_cast<size_t>(b));
  block_sums<B>(l, y, cb, s.data(), [](float v, int64_t) { return v; });
  for (int64_t j = 0; j < b; ++j) m[j] = static_cast<float>(s[j] / count);
  const float* mp = m.data();
  block_sums<B>(l, y, cb, s.data(), [mp](float v, int64_t j) {
    const float d = v - mp[j];
    return d * d;
  });
  std::vector<Affine> af(static_cast<size_t>(valid));
  for (int64_t j = 0; j < valid; ++j) {
    mean[c0 + j] = m[j];
    var[c0 + j] = static_cast<float>(s[j] / count);
    af[j] = affine_of(mean, var, gamma, beta, c0 + j, eps);
  }
  if constexpr (B > 0) {
    switch (act) {
      case ConvActivation::none:
        return forward_tiled<B, ConvActivation::none>(l, y, af, residual, out, cb, valid);
      case ConvActivation::relu:
        return forward_tiled<B, ConvActivation::relu>(l, y, af, residual, out, cb, valid);
      case ConvActivation::relu6:
        return forward_tiled<B, ConvActivation::relu6>(l, y, af, residual, out, cb, valid);
    }
  }
  // Image by image, so one image's block (read with stride b) stays in cache across its lanes.
  for (int64_t n = 0; n < l.n; ++n) {
    const float* base = y + (n * l.blocks() + cb) * l.hw * b;
    for (int64_t j = 0; j < valid; ++j) {
      const Affine a = af[j];
      const float* p = base + j;
      const int64_t row = (n * l.c + c0 + j) * l.hw;
      float* o = out + row;
      if (residual) {
        const float* r = residual + row;
        for (int64_t k = 0; k < l.hw; ++k)
          o[k] = activate(p[k * b] * a.scale + a.shift + r[k], act);
      } else {
        for (int64_t k = 0; k < l.hw; ++k) o[k] = activate(p[k * b] * a.scale + a.shift, act);
      }
    }
  }
}

// g = dL/dout through the activation, from its output o (when a residual went in) or else
// recomputed from y.
template <ConvActivation A>
inline float masked(float go, const float* o, float v, const Affine& a, int64_t k) {
  if (A == ConvActivation::none) return go;
  const float z = o ? o[k] : activate(v * a.scale + a.shift, A);
  return passes(z, A) ? go : 0.0f;
}

// backward_block for a compile-time block: lanes in eight-float vectors, tiles of gout (and
// out) transposed to [position][lane] through small buffers.
template <int B, ConvActivation A>
void backward_tiled(const BlockedLayout& l, const float* y, const std::vector<Affine>& af,
                    const float* gout, const float* out, float* gy, float* ggamma, float* gbeta,
                    float* gres, int64_t cb, int64_t valid, const float* gamma) {
  const int64_t c0 = cb * B;
  const double count = static_cast<double>(l.n * l.hw);
  alignas(64) float sc[B] = {}, sh[B] = {}, mu[B] = {};
  for (int64_t j = 0; j < valid; ++j) sc[j] = af[j].scale, sh[j] = af[j].shift, mu[j] = af[j].mean;
  alignas(64) float g[kTile * B], o[kTile * B];
  // g = dL/dout through the activation for the tile (mask from out, or recomputed from y).
  auto grad_tile = [&](const float* base, int64_t row0, int64_t k0, int64_t kt) {
    gather_tile<B>(gout, row0, l.hw, k0, kt, valid, g);
    if (A == ConvActivation::none) return;
    if (out) gather_tile<B>(out, row0, l.hw, k0, kt, valid, o);
    for (int64_t k = 0; k < kt; ++k)
      for (int j = 0; j < B; j += kV) {
        const v8f z = out ? load8(o + k * B + j)
                          : act8<A>(load8(base + (k0 + k) * B + j) * load8(sc + j) + load8(sh + j));
        store8(g + k * B + j, keep(pass8<A>(z), load8(g + k * B + j)));
      }
  };
  double sg[B] = {}, sgx[B] = {};
  for (int64_t n = 0; n < l.n; ++n) {
    const float* base = y + (n * l.blocks() + cb) * l.hw * B;
    const int64_t row0 = (n * l.c + c0) * l.hw;
    v8f a[B / kV] = {}, bs[B / kV] = {};
    for (int64_t k0 = 0; k0 < l.hw; k0 += kTile) {
      const int64_t kt = std::min(kTile, l.hw - k0);
      grad_tile(base, row0, k0, kt);
      if (gres) scatter_tile<B>(g, row0, l.hw, k0, kt, valid, gres);
      // g is kept in gy (blocked, contiguous per tile) for the second pass.
      float* q = gy + (n * l.blocks() + cb) * l.hw * B + k0 * B;
      std::memcpy(q, g, static_cast<size_t>(kt * B) * sizeof(float));
      for (int64_t k = 0; k < kt; ++k) {
        const float* p = base + (k0 + k) * B;
        for (int j = 0; j < B; j += kV) {
          const v8f gv = load8(g + k * B + j);
          a[j / kV] += gv;
          bs[j / kV] += gv * (load8(p + j) - load8(mu + j));
        }
      }
    }
    for (int j = 0; j < B; ++j) sg[j] += a[j / kV][j % kV], sgx[j] += bs[j / kV][j % kV];
  }
  alignas(64) float k1[B] = {}, mg[B] = {}, k2[B] = {};
  for (int64_t j = 0; j < valid; ++j) {
    const Affine& f = af[j];
    if (ggamma) ggamma[c0 + j] = static_cast<float>(sgx[j] * f.rstd);
    if (gbeta) gbeta[c0 + j] = static_cast<float>(sg[j]);
    k1[j] = (gamma ? gamma[c0 + j] : 1.0f) * f.rstd;
    mg[j] = static_cast<float>(sg[j] / count);
    k2[j] = static_cast<float>(sgx[j] / count) * f.rstd * f.rstd;
  }
  // dy = gamma rstd (g - mean(g) - (y - mean) rstd^2 mean(g (y - mean))). Padding lanes have
  // k1 = 0, so they are written as zeros (as oneDNN expects) unless y's padding is not finite.
  alignas(64) float lane_ok[B];
  for (int j = 0; j < B; ++j) lane_ok[j] = j < valid ? 1.0f : 0.0f;
  for (int64_t n = 0; n < l.n; ++n) {
    const int64_t off = (n * l.blocks() + cb) * l.hw * B;
    const float* p = y + off;
    float* q = gy + off;  // holds g from the first pass
    for (int64_t k = 0; k < l.hw * B; k += B)
      for (int j = 0; j < B; j += kV) {
        const v8f v = load8(p + k + j) * load8(lane_ok + j);
        store8(q + k + j, load8(k1 + j) * (load8(q + k + j) - load8(mg + j) -
                                           (v - load8(mu + j)) * load8(k2 + j)));
      }
  }
}

template <int B, ConvActivation A>
void backward_block(const BlockedLayout& l, const float* y, const float* mean, const float* var,
                    const float* gamma, const float* beta, const float* gout, const float* out,
                    double eps, float* gy, float* ggamma, float* gbeta, float* gres, int64_t cb) {
  const int64_t b = B > 0 ? B : l.block;
  const int64_t c0 = cb * b, valid = std::min(b, l.c - c0);
  const double count = static_cast<double>(l.n * l.hw);
  std::vector<Affine> af(static_cast<size_t>(valid));
  for (int64_t j = 0; j < valid; ++j) af[j] = affine_of(mean, var, gamma, beta, c0 + j, eps);
  std::vector<double> sg(static_cast<size_t>(valid), 0.0), sgx(static_cast<size_t>(valid), 0.0);
  if constexpr (B > 0) {
    backward_tiled<B, A>(l, y, af, gout, out, gy, ggamma, gbeta, gres, cb, valid, gamma);
    return;
  }
  // Pass 1, image by image: sum g and sum g (y - mean) per channel.
  for (int64_t n = 0; n < l.n; ++n) {
    const float* base = y + (n * l.blocks() + cb) * l.hw * b;
    for (int64_t j = 0; j < valid; ++j) {
      const Affine a = af[j];
      const float* p = base + j;
      const int64_t row = (n * l.c + c0 + j) * l.hw;
      const float* go = gout + row;
      const float* o = out ? out + row : nullptr;
      float as = 0, bs = 0;
      for (int64_t k = 0; k < l.hw; ++k) {
        const float v = p[k * b];
        const float g = masked<A>(go[k], o, v, a, k);
        if (gres) gres[row + k] = g;
        as += g;
        bs += g * (v - a.mean);
      }
      sg[j] += as;
      sgx[j] += bs;
    }
  }
  std::vector<float> k1(static_cast<size_t>(valid)), mg(k1.size()), k2(k1.size());
  for (int64_t j = 0; j < valid; ++j) {
    const Affine a = af[j];
    if (ggamma) ggamma[c0 + j] = static_cast<float>(sgx[j] * a.rstd);
    if (gbeta) gbeta[c0 + j] = static_cast<float>(sg[j]);
    // dy = gamma rstd (g - mean(g) - (y - mean) rstd^2 mean(g (y - mean)))
    k1[j] = (gamma ? gamma[c0 + j] : 1.0f) * a.rstd;
    mg[j] = static_cast<float>(sg[j] / count);
    k2[j] = static_cast<float>(sgx[j] / count) * a.rstd * a.rstd;
  }
  // Pass 2: dL/dy in the blocked layout; padding channels zero, as oneDNN expects.
  for (int64_t n = 0; n < l.n; ++n) {
    const int64_t off = (n * l.blocks() + cb) * l.hw * b;
    for (int64_t j = 0; j < valid; ++j) {
      const Affine a = af[j];
      const float* p = y + off + j;
      float* q = gy + off + j;
      const int64_t row = (n * l.c + c0 + j) * l.hw;
      const float* go = gout + row;
      const float* o = out ? out + row : nullptr;
      const float kk1 = k1[j], kmg = mg[j], kk2 = k2[j];
      for (int64_t k = 0; k < l.hw; ++k) {
        const float v = p[k * b];
        q[k * b] = kk1 * (masked<A>(go[k], o, v, a, k) - kmg - (v - a.mean) * kk2);
      }
    }
    for (int64_t j = valid; j < b; ++j) {
      float* q = gy + off + j;
      for (int64_t k = 0; k < l.hw; ++k) q[k * b] = 0.0f;
    }
  }
}

template <int B>
void backward_block_act(const BlockedLayout& l, const float* y, const float* mean, const float* var,
                        const float* gamma, const float* beta, const float* gout, const float* out,
                        ConvActivation act, double eps, float* gy, float* ggamma, float* gbeta,
                        float* gres, int64_t cb) {
  switch (act) {
    case ConvActivation::none:
      return backward_block<B, ConvActivation::none>(l, y, mean, var, gamma, beta, gout, out, eps,
                                                     gy, ggamma, gbeta, gres, cb);
    case ConvActivation::relu:
      return backward_block<B, ConvActivation::relu>(l, y, mean, var, gamma, beta, gout, out, eps,
                                                     gy, ggamma, gbeta, gres, cb);
    case ConvActivation::relu6:
      return backward_block<B, ConvActivation::relu6>(l, y, mean, var, gamma, beta, gout, out, eps,
                                                      gy, ggamma, gbeta, gres, cb);
  }
}

// Plain NCHW (block 1): each channel is N contiguous rows of HW floats, vectorised along the
// row. The body runs in eight-float vectors and the tail in scalars, the same split in both
// directions, so the recomputed activation mask matches the forward's output.
template <ConvActivation A>
void plain_forward(const BlockedLayout& l, const float* y, float* mean, float* var,
                   const float* gamma, const float* beta, const float* residual, float* out,
                   double eps, int64_t ch) {
  const int64_t hw = l.hw, body = hw / kV * kV;
  const double count = static_cast<double>(l.n * hw);
  double s = 0;
  for (int64_t n = 0; n < l.n; ++n) {
    const float* r = y + (n * l.c + ch) * hw;
    v8f a = {};
    float t = 0;
    for (int64_t k = 0; k < body; k += kV) a += load8(r + k);
    for (int64_t k = body; k < hw; ++k) t += r[k];
    s += static_cast<double>(hsum(a)) + t;
  }
  const float m = static_cast<float>(s / count);
  const v8f mv = splat(m);
  double q = 0;
  for (int64_t n = 0; n < l.n; ++n) {
    const float* r = y + (n * l.c + ch) * hw;
    v8f a = {};
    float t = 0;
    for (int64_t k = 0; k < body; k += kV) {
      const v8f d = load8(r + k) - mv;
      a += d * d;
    }
    for (int64_t k = body; k < hw; ++k) t += (r[k] - m) * (r[k] - m);
    q += static_cast<double>(hsum(a)) + t;
  }
  mean[ch] = m;
  var[ch] = static_cast<float>(q / count);
  const Affine f = affine_of(mean, var, gamma, beta, ch, eps);
  const v8f sc = splat(f.scale), sh = splat(f.shift);
  for (int64_t n = 0; n < l.n; ++n) {
    const int64_t row = (n * l.c + ch) * hw;
    const float* r = y + row;
    const float* res = residual ? residual + row : nullptr;
    float* o = out + row;
    for (int64_t k = 0; k < body; k += kV) {
      v8f v = load8(r + k) * sc + sh;
      if (res) v += load8(res + k);
      store8(o + k, act8<A>(v));
    }
    for (int64_t k = body; k < hw; ++k)
      o[k] = activate(r[k] * f.scale + f.shift + (res ? res[k] : 0.0f), A);
  }
}

template <ConvActivation A>
void plain_backward(const BlockedLayout& l, const float* y, const float* mean, const float* var,
                    const float* gamma, const float* beta, const float* gout, const float* out,
                    double eps, float* gy, float* ggamma, float* gbeta, float* gres, int64_t ch) {
  const int64_t hw = l.hw, body = hw / kV * kV;
  const double count = static_cast<double>(l.n * hw);
  const Affine f = affine_of(mean, var, gamma, beta, ch, eps);
  const v8f sc = splat(f.scale), sh = splat(f.shift), mv = splat(f.mean);
  // g for the vector at k and for the scalar at k (mask from out, or recomputed from y).
  auto g8 = [&](const float* go, const float* o, const float* r, int64_t k) {
    if (A == ConvActivation::none) return load8(go + k);
    const v8f z = o ? load8(o + k) : act8<A>(load8(r + k) * sc + sh);
    return keep(pass8<A>(z), load8(go + k));
  };
  auto g1 = [&](const float* go, const float* o, const float* r, int64_t k) {
    if (A == ConvActivation::none) return go[k];
    const float z = o ? o[k] : activate(r[k] * f.scale + f.shift, A);
    return passes(z, A) ? go[k] : 0.0f;
  };
  double sg = 0, sgx = 0;
  for (int64_t n = 0; n < l.n; ++n) {
    const int64_t row = (n * l.c + ch) * hw;
    const float *r = y + row, *go = gout + row, *o = out ? out + row : nullptr;
    v8f a = {}, b = {};
    float ta = 0, tb = 0;
    float* q = gy + row;  // g is kept here for the second pass
    for (int64_t k = 0; k < body; k += kV) {
      const v8f g = g8(go, o, r, k);
      if (gres) store8(gres + row + k, g);
      store8(q + k, g);
      a += g;
      b += g * (load8(r + k) - mv);
    }
    for (int64_t k = body; k < hw; ++k) {
      const float g = g1(go, o, r, k);
      if (gres) gres[row + k] = g;
      q[k] = g;
      ta += g;
      tb += g * (r[k] - f.mean);
    }
    sg += static_cast<double>(hsum(a)) + ta;
    sgx += static_cast<double>(hsum(b)) + tb;
  }
  if (ggamma) ggamma[ch] = static_cast<float>(sgx * f.rstd);
  if (gbeta) gbeta[ch] = static_cast<float>(sg);
  const float k1 = (gamma ? gamma[ch] : 1.0f) * f.rstd;
  const float mg = static_cast<float>(sg / count);
  const float k2 = static_cast<float>(sgx / count) * f.rstd * f.rstd;
  const v8f k1v = splat(k1), mgv = splat(mg), k2v = splat(k2);
  for (int64_t n = 0; n < l.n; ++n) {
    const int64_t row = (n * l.c + ch) * hw;
    const float* r = y + row;
    float* q = gy + row;  // holds g from the first pass
    for (int64_t k = 0; k < body; k += kV)
      store8(q + k, k1v * (load8(q + k) - mgv - (load8(r + k) - mv) * k2v));
    for (int64_t k = body; k < hw; ++k) q[k] = k1 * (q[k] - mg - (r[k] - f.mean) * k2);
  }
}

bool parallel(const BlockedLayout& l) {
  return l.n * l.c * l.hw > kGrain && l.blocks() > 1;
}

}  // namespace

void bn_blocked_forward(const BlockedLayout& l, const float* y, float* mean, float* var,
                        const float* gamma, const float* beta, const float* residual, float* out,
                        ConvActivation act, double eps) {
  const int64_t nb = l.blocks();
  if (l.block == 1) {
#pragma omp parallel for schedule(static) if (parallel(l))
    for (int64_t ch = 0; ch < nb; ++ch) {
      if (act == ConvActivation::relu)
        plain_forward<ConvActivation::relu>(l, y, mean, var, gamma, beta, residual, out, eps, ch);
      else if (act == ConvActivation::relu6)
        plain_forward<ConvActivation::relu6>(l, y, mean, var, gamma, beta, residual, out, eps, ch);
      else
        plain_forward<ConvActivation::none>(l, y, mean, var, gamma, beta, residual, out, eps, ch);
    }
    return;
  }
#pragma omp parallel for schedule(static) if (parallel(l))
  for (int64_t cb = 0; cb < nb; ++cb) {
    if (l.block == 16)
      forward_block<16>(l, y, mean, var, gamma, beta, residual, out, act, eps, cb);
    else if (l.block == 8)
      forward_block<8>(l, y, mean, var, gamma, beta, residual, out, act, eps, cb);
    else
      forward_block<0>(l, y, mean, var, gamma, beta, residual, out, act, eps, cb);
  }
}

void bn_blocked_backward(const BlockedLayout& l, const float* y, const float* mean,
                         const float* var, const float* gamma, const float* beta, const float* gout,
                         const float* out, ConvActivation act, double eps, float* gy, float* ggamma,
                         float* gbeta, float* gresidual) {
  const int64_t nb = l.blocks();
  if (l.block == 1) {
#pragma omp parallel for schedule(static) if (parallel(l))
    for (int64_t ch = 0; ch < nb; ++ch) {
      if (act == ConvActivation::relu)
        plain_backward<ConvActivation::relu>(l, y, mean, var, gamma, beta, gout, out, eps, gy,
                                             ggamma, gbeta, gresidual, ch);
      else if (act == ConvActivation::relu6)
        plain_backward<ConvActivation::relu6>(l, y, mean, var, gamma, beta, gout, out, eps, gy,
                                              ggamma, gbeta, gresidual, ch);
      else
        plain_backward<ConvActivation::none>(l, y, mean, var, gamma, beta, gout, out, eps, gy,
                                             ggamma, gbeta, gresidual, ch);
    }
    return;
  }
#pragma omp parallel for schedule(static) if (parallel(l))
  for (int64_t cb = 0; cb < nb; ++cb) {
    if (l.block == 16)
      backward_block_act<16>(l, y, mean, var, gamma, beta, gout, out, act, eps, gy, ggamma, gbeta,
                             gresidual, cb);
    else if (l.block == 8)
      backward_block_act<8>(l, y, mean, var, gamma, beta, gout, out, act, eps, gy, ggamma, gbeta,
                            gresidual, cb);
    else
      backward_block_act<0>(l, y, mean, var, gamma, beta, gout, out, act, eps, gy, ggamma, gbeta,
                            gresidual, cb);
  }
}

}  // namespace oar::cpu
