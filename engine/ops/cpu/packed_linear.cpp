// Inference linear layers from weights packed into 32-column panels (see packed_linear.h).
//
// Loop nest, per thread (threads split the panels): for each chunk of up to 256 rows of x, for
// each block of up to 768 of k, for each of the thread's panels, for each 12-row tile: a 12 x 32
// micro-kernel (24 accumulators, the panel's two vectors per k, x broadcast from memory). The
// x slice of a block (<= 768 KiB) stays in L2 and the panel block (<= 96 KiB) is reused by every
// tile. While one panel block is in use, each tile prefetches its share of the next block the
// thread will read: without it the first tile of every panel waits on memory for the whole
// block (cold weights ran at 130 GFLOP/s per core; with it 160-170).
#include "engine/ops/cpu/packed_linear.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <utility>
#include <vector>

#include "engine/core/cpu_features.h"
#include "engine/core/error.h"
#include "engine/ops/cpu/fast_exp.h"
#include "engine/tensor/source_stamp.h"

namespace oar::cpu {

namespace {

constexpr int64_t kPanel = 32;   // columns per panel: two 16-float vectors
constexpr int kTile = 12;        // rows per micro-kernel: 24 accumulators + 2 panel vectors
constexpr int64_t kDepth = 768;  // k per block
constexpr int64_t kChunk = 256;  // rows of x per chunk

struct Tile {
  const float* a;  // x rows
  int64_t lda;
  const float* b;  // panel block [kk][32]
  float* c;        // out, at the tile's first row and the panel's first column
  int64_t ldc, kk;
  const float* bias;  // null: none; else the panel's biases (read under m0, m1)
  bool first, last;   // first block starts from the bias, last applies act
  int act;
  __mmask16 m0, m1;  // which of the panel's columns exist in out and bias
  const char* pf;    // next block's share to prefetch: [pf, pf_end), one line every 2^shift k
  const char* pf_end;
  int shift;
};

// GELU (erf form) x (1 + erf(x / sqrt 2)) / 2, sixteen lanes, for the epilogue: erf from the
// rational fit Eigen and XLA use for f32 (odd degree-13 numerator over even degree-8
// denominator on x clamped to [-4, 4], where erf is +-1 in f32), the division as a reciprocal
// estimate and one Newton step. Within 7.4e-7 of max(1, |GELU(x)|) over [-10, 10] (the test's
// grid); a third of the work of fast_gelu, whose erfc branch keeps relative accuracy in the far
// negative tail, which training's derivative needs and a forward pass does not.
//
// The full-mask forms: GCC 12 warns (maybe-uninitialized) on the plain ones' undefined source.
constexpr __mmask16 kAll = 0xffff;
OAR_TARGET_AVX512 inline __m512 max16(__m512 a, __m512 b) {
  return _mm512_maskz_max_ps(kAll, a, b);
}
OAR_TARGET_AVX512 inline __m512 min16(__m512 a, __m512 b) {
  return _mm512_maskz_min_ps(kAll, a, b);
}

OAR_TARGET_AVX512 inline __m512 gelu_erf16(__m512 x) {
  const __m512 z =
      max16(min16(_mm512_mul_ps(x, _mm512_set1_ps(0.70710678118654752f)), _mm512_set1_ps(4.0f)),
            _mm512_set1_ps(-4.0f));
  const __m512 z2 = _mm512_mul_ps(z, z);
  __m512 p = _mm512_fmadd_ps(z2, _mm512_set1_ps(-2.72614225801306e-10f),
                             _mm512_set1_ps(2.77068142495902e-08f));
  p = _mm512_fmadd_ps(z2, p, _mm512_set1_ps(-2.10102402082508e-06f));
  p = _mm512_fmadd_ps(z2, p, _mm512_set1_ps(-5.69250639462346e-05f));
  p = _mm512_fmadd_ps(z2, p, _mm512_set1_ps(-7.34990630326855e-04f));
  p = _mm512_fmadd_ps(z2, p, _mm512_set1_ps(-2.95459980854025e-03f));
  p = _mm512_fmadd_ps(z2, p, _mm512_set1_ps(-1.60960333262415e-02f));
  p = _mm512_mul_ps(z, p);
  __m512 q = _mm512_fmadd_ps(z2, _mm512_set1_ps(-1.45660718464996e-05f),
                             _mm512_set1_ps(-2.13374055278905e-04f));
  q = _mm512_fmadd_ps(z2, q, _mm512_set1_ps(-1.68282697438203e-03f));
  q = _mm512_fmadd_ps(z2, q, _mm512_set1_ps(-7.37332916720468e-03f));
  q = _mm512_fmadd_ps(z2, q, _mm512_set1_ps(-1.42647390514189e-02f));
  __m512 r = _mm512_maskz_rcp14_ps(kAll, q);
  r = _mm512_mul_ps(r, _mm512_fnmadd_ps(q, r, _mm512_set1_ps(2.0f)));  // Newton: r (2 - q r)
  const __m512 erf = _mm512_mul_ps(p, r);
  const __m512 half_x = _mm512_mul_ps(x, _mm512_set1_ps(0.5f));
  return _mm512_fmadd_ps(half_x, erf, half_x);
}

OAR_TARGET_AVX512 inline __m512 activate16(__m512 v, int act) {
  // max returns its second operand when either is NaN: ReLU(NaN) stays NaN, as in relu().
  return act == 1 ? gelu_erf16(v) : act == 3 ? max16(_mm512_setzero_ps(), v) : v;
}

template <int R>
OAR_TARGET_AVX512 void micro(const Tile& t) {
  __m512 c0[R], c1[R];
  if (t.first) {
    const __m512 b0 = t.bias ? _mm512_maskz_loadu_ps(t.m0, t.bias) : _mm512_setzero_ps();
    const __m512 b1 = t.bias ? _mm512_maskz_loadu_ps(t.m1, t.bias + 16) : _mm512_setzero_ps();
    for (int r = 0; r < R; ++r) c0[r] = b0, c1[r] = b1;
  } else {
    for (int r = 0; r < R; ++r) {
      c0[r] = _mm512_maskz_loadu_ps(t.m0, t.c + r * t.ldc);
      c1[r] = _mm512_maskz_loadu_ps(t.m1, t.c + r * t.ldc + 16);
    }
  }
  const float* a = t.a;
  const float* b = t.b;
  const char* pf = t.pf;
  const int64_t mask = (int64_t{1} << t.shift) - 1;
  for (int64_t k = 0; k < t.kk; ++k) {
    const __m512 b0 = _mm512_loadu_ps(b + k * kPanel), b1 = _mm512_loadu_ps(b + k * kPanel + 16);
    if ((k & mask) == 0 && pf < t.pf_end) {
      _mm_prefetch(pf, _MM_HINT_T0);
      pf += 64;
    }
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) {
      const __m512 av = _mm512_set1_ps(a[r * t.lda + k]);
      c0[r] = _mm512_fmadd_ps(av, b0, c0[r]);
      c1[r] = _mm512_fmadd_ps(av, b1, c1[r]);
    }
  }
  if (t.last && (t.act == 1 || t.act == 3)) {
    for (int r = 0; r < R; ++r) c0[r] = activate16(c0[r], t.act), c1[r] = activate16(c1[r], t.act);
  }
  for (int r = 0; r < R; ++r) {
    _mm512_mask_storeu_ps(t.c + r * t.ldc, t.m0, c0[r]);
    _mm512_mask_storeu_ps(t.c + r * t.ldc + 16, t.m1, c1[r]);
  }
  if (t.last && t.act == 2) {  // GELU (tanh form), from memory
    const int cols = __builtin_popcount(t.m0) + __builtin_popcount(t.m1);
    for (int r = 0; r < R; ++r) {
      float* y = t.c + r * t.ldc;
      for (int j = 0; j < cols; ++j) y[j] = fast_gelu_tanh(y[j]);
    }
  }
}

using Micro = void (*)(const Tile&);
template <int... R>
constexpr auto micro_table(std::integer_sequence<int, R...>) {
  return std::array<Micro, sizeof...(R)>{&micro<R + 1>...};
}
constexpr auto kMicro = micro_table(std::make_integer_sequence<int, kTile>{});

struct Problem {
  const float* x;
  int64_t lda;
  const float* panels;
  const float* bias;  // [n], or null
  float* out;
  int64_t m, n, k;
  int act;
};

// One thread's share: panels [p0, p1) for every row.
void run_share(const Problem& pr, int64_t p0, int64_t p1) {
  if (p0 >= p1) return;
  const int64_t blocks = (pr.k + kDepth - 1) / kDepth;
  const int64_t depth = (pr.k + blocks - 1) / blocks;  // balanced blocks
  auto block_at = [&](int64_t p, int64_t k0) {
    return reinterpret_cast<const char*>(pr.panels + (p * pr.k + k0) * kPanel);
  };
  for (int64_t r0 = 0; r0 < pr.m; r0 += kChunk) {
    const int64_t rows = std::min(kChunk, pr.m - r0);
    const int64_t tiles = (rows + kTile - 1) / kTile;
    for (int64_t k0 = 0; k0 < pr.k; k0 += depth) {
      const int64_t kk = std::min(depth, pr.k - k0);
      for (int64_t p = p0; p < p1; ++p) {
        // The next block this thread reads, and each tile's share of its lines.
        const char* next = nullptr;
        int64_t next_bytes = 0;
        if (p + 1 < p1) {
          next = block_at(p + 1, k0), next_bytes = kk * kPanel * 4;
        } else if (k0 + kk < pr.k) {
          next = block_at(p0, k0 + kk), next_bytes = std::min(depth, pr.k - k0 - kk) * kPanel * 4;
        } else if (r0 + rows < pr.m) {
          next = block_at(p0, 0), next_bytes = std::min(depth, pr.k) * kPanel * 4;
        }
        const int64_t lines = (next_bytes + 63) / 64;
        const int64_t share = (lines + tiles - 1) / tiles;
        int shift = 0;
        while (shift < 6 && (kk >> (shift + 1)) >= share) ++shift;

        const int64_t c0 = p * kPanel, cols = std::min(kPanel, pr.n - c0);
        Tile t{};
        t.lda = pr.lda;
        t.b = pr.panels + (p * pr.k + k0) * kPanel;
        t.ldc = pr.n;
        t.kk = kk;
        t.bias = pr.bias ? pr.bias + c0 : nullptr;
        t.first = k0 == 0;
        t.last = k0 + kk == pr.k;
        t.act = pr.act;
        t.m0 = static_cast<__mmask16>(cols >= 16 ? 0xffff : (1u << cols) - 1);
        t.m1 = static_cast<__mmask16>(cols >= 32  ? 0xffff
                                      : cols > 16 ? (1u << (cols - 16)) - 1
                                                  : 0);
        t.shift = shift;
        for (int64_t i = 0; i < tiles; ++i) {
          const int64_t row = r0 + i * kTile, h = std::min<int64_t>(kTile, r0 + rows - row);
          t.a = pr.x + row * pr.lda + k0;
          t.c = pr.out + row * pr.n + c0;
          const int64_t from = std::min(lines, i * share) * 64;
          t.pf = next ? next + from : nullptr;
          t.pf_end = next ? next + std::min(lines, (i + 1) * share) * 64 : nullptr;
          kMicro[static_cast<size_t>(h - 1)](t);
        }
      }
    }
  }
}

// Threads split the panels; where there are fewer panels than threads (n <= 32: a classifier or
// an attention score over many rows), the rows too, in whole tiles. Every output element is
// computed by one thread in the same order, so any split gives the same bits.
void run(const Problem& pr) {
  const int64_t panels = (pr.n + kPanel - 1) / kPanel, tiles = (pr.m + kTile - 1) / kTile;
  const int64_t avail = omp_in_parallel() ? 1 : omp_get_max_threads();
  const int64_t by_panel = std::min(avail, panels);
  const int64_t by_row = std::max<int64_t>(1, std::min(avail / by_panel, tiles));
  if (by_panel * by_row <= 1) return run_share(pr, 0, panels);
#pragma omp parallel num_threads(static_cast <int>(by_panel * by_row))
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t cols = std::min(by_panel, nt), rows = std::max<int64_t>(1, nt / cols);
    const int64_t tp = t % cols, tr = t / cols;
    if (tr < rows) {
      Problem part = pr;
      const int64_t r0 = std::min(pr.m, tiles * tr / rows * kTile);
      const int64_t r1 = tr + 1 == rows ? pr.m : std::min(pr.m, tiles * (tr + 1) / rows * kTile);
      part.x = pr.x + r0 * pr.lda;
      part.out = pr.out + r0 * pr.n;
      part.m = r1 - r0;
      if (part.m > 0) run_share(part, panels * tp / cols, panels * (tp + 1) / cols);
    }
  }
}

void check_run_args(const Tensor& out, const Tensor& x, int64_t n, const Tensor& bias) {
  OAR_CHECK(out.dtype() == DType::f32 && x.dtype() == DType::f32 && out.dim() == 2 &&
                x.dim() == 2 && out.is_contiguous() && x.stride(1) == 1 &&
                x.stride(0) >= x.size(1) && out.size(0) == x.size(0) && out.size(1) == n,
            "packed_linear: expected x [m, k] f32 with adjacent columns and out [m, ", n,
            "] contiguous f32, got ", shape_str(x.shape()), " and ", shape_str(out.shape()));
  OAR_CHECK(
      !bias.defined() || (bias.dtype() == DType::f32 && bias.is_contiguous() && bias.numel() == n),
      "packed_linear: bias must be [", n, "] contiguous f32");
}

// ---- the cache of packed weights ----

// Keyed by the first part; an entry is valid while its stamp is current for the parts.
struct Key {
  const Storage* storage;
  int64_t offset, n, k, parts;
  bool operator<(const Key& o) const {
    return std::tie(storage, offset, n, k, parts) <
           std::tie(o.storage, o.offset, o.n, o.k, o.parts);
  }
};
struct Entry {
  SourceStamp stamp;  // the parts, taken before packing
  Tensor panels;
};
// Never destroyed: cached tensors must not be freed at exit after their allocator.
std::mutex& g_mu = *new std::mutex;
std::map<Key, Entry>& g_cache = *new std::map<Key, Entry>;

bool enabled() {
  static const bool yes = [] {
    const char* v = std::getenv("OAR_PACKED_LINEAR");
    return !(v && std::strcmp(v, "0") == 0);
  }();
  return yes;
}

// The packed copy of the weights stacked along n, made on first use and again after any part is
// written (an optimizer step bumps its storage's version).
Tensor cached_panels(const std::vector<Tensor>& ws) {
  int64_t n = 0;
  for (const Tensor& w : ws) n += w.size(0);
  const Key key{ws[0].impl()->storage.get(), ws[0].offset(), n, ws[0].size(1),
                static_cast<int64_t>(ws.size())};
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = g_cache.find(key);
    if (it != g_cache.end() && it->second.stamp.current(ws)) return it->second.panels;
  }
  // Pack outside the lock (other threads keep using cached weights meanwhile), recording the
  // versions read before packing: a write during packing leaves the copy stale, and the next
  // use packs again. Two threads missing at once both pack; the later insert wins.
  SourceStamp stamp(ws);
  Tensor panels = pack_linear_weights(ws);
  std::lock_guard<std::mutex> lock(g_mu);
  // Entries whose weights died are dropped whenever new weights are packed.
  for (auto e = g_cache.begin(); e != g_cache.end();)
    e = e->second.stamp.alive() ? std::next(e) : g_cache.erase(e);
  g_cache[key] = Entry{std::move(stamp), panels};
  return panels;
}

}  // namespace

bool packed_linear_available() {
  return cpu_has_avx512();
}

Tensor pack_linear_weight(const Tensor& w) {
  return pack_linear_weights({w});
}

Tensor pack_linear_weights(const std::vector<Tensor>& ws) {
  OAR_CHECK(!ws.empty(), "pack_linear_weights: no weights");
  const int64_t k = ws[0].dim() == 2 ? ws[0].size(1) : -1;
  int64_t n = 0;
  std::vector<const float*> rows;  // the source of each stacked row
  for (size_t i = 0; i < ws.size(); ++i) {
    const Tensor& w = ws[i];
    OAR_CHECK(w.dim() == 2 && w.dtype() == DType::f32 && w.is_contiguous() && w.device().is_cpu() &&
                  w.size(1) == k,
              "pack_linear_weights: expected contiguous f32 CPU weights [n_i, ", k, "], got ",
              shape_str(w.shape()), " (part ", i, ")");
    OAR_CHECK(i + 1 == ws.size() || w.size(0) % kPanel == 0, "pack_linear_weights: part ", i,
              " has ", w.size(0), " rows; all but the last must have a multiple of ", kPanel);
    n += w.size(0);
    for (int64_t r = 0; r < w.size(0); ++r) rows.push_back(w.data<float>() + r * k);
  }
  const int64_t panels = (n + kPanel - 1) / kPanel;
  Tensor out = empty({panels, k, kPanel}, DType::f32, Device::cpu());
  float* dst = out.data<float>();
#pragma omp parallel for if (panels > 1 && !omp_in_parallel())
  for (int64_t p = 0; p < panels; ++p) {
    float* block = dst + p * k * kPanel;
    for (int64_t j = 0; j < kPanel; ++j) {
      const int64_t row = p * kPanel + j;
      if (row < n) {
        const float* src = rows[static_cast<size_t>(row)];
        for (int64_t i = 0; i < k; ++i) block[i * kPanel + j] = src[i];
      } else {
        for (int64_t i = 0; i < k; ++i) block[i * kPanel + j] = 0.0f;
      }
    }
  }
  return out;
}

void packed_linear_run(const Tensor& out, const Tensor& x, const Tensor& panels, int64_t n,
                       const Tensor& bias, int act) {
  OAR_CHECK(packed_linear_available(), "packed_linear: this CPU has no AVX-512");
  check_run_args(out, x, n, bias);
  const int64_t k = x.size(1);
  OAR_CHECK(panels.dtype() == DType::f32 && panels.is_contiguous() &&
                panels.numel() == (n + kPanel - 1) / kPanel * k * kPanel,
            "packed_linear: panels ", shape_str(panels.shape()), " do not hold an [", n, ", ", k,
            "] weight");
  OAR_CHECK(act >= 0 && act <= 3, "packed_linear: unknown activation ", act);
  OAR_CHECK(k > 0, "packed_linear: x has no columns (an empty product is not packed)");
  if (x.size(0) == 0 || n == 0) return;
  run(Problem{x.data<float>(), x.stride(0), panels.data<float>(),
              bias.defined() ? bias.data<float>() : nullptr, out.data<float>(), x.size(0), n, k,
              act});
}

Tensor packed_linear(const Tensor& x, const Tensor& w, const Tensor& bias, int act) {
  return packed_linear(x, std::vector<Tensor>{w}, bias, act);
}

Tensor packed_linear(const Tensor& x, const std::vector<Tensor>& ws, const Tensor& bias, int act) {
  static const bool available = packed_linear_available();
  if (!available || !enabled() || ws.empty()) return Tensor();
  if (!x.device().is_cpu() || x.dtype() != DType::f32 || x.dim() != 2 || x.stride(1) != 1 ||
      x.stride(0) < x.size(1) || x.size(0) == 0 || x.size(1) == 0 ||
      (bias.defined() && (bias.dtype() != DType::f32 || !bias.is_contiguous())))
    return Tensor();
  int64_t n = 0;
  for (size_t i = 0; i < ws.size(); ++i) {
    const Tensor& w = ws[i];
    if (!w.defined() || !w.device().is_cpu() || w.dtype() != DType::f32 || w.dim() != 2 ||
        !w.is_contiguous() || w.size(1) != x.size(1) || w.size(0) == 0 ||
        (i + 1 < ws.size() && w.size(0) % kPanel != 0))
      return Tensor();
    n += w.size(0);
  }
  if (bias.defined() && (bias.numel() != n || !bias.device().is_cpu())) return Tensor();
  const Tensor panels = cached_panels(ws);
  Tensor out = empty({x.size(0), n}, DType::f32, Device::cpu());
  packed_linear_run(out, x, panels, n, bias, act);
  return out;
}

void packed_linear_release() {
  std::lock_guard<std::mutex> lock(g_mu);
  g_cache.clear();
}

int64_t packed_linear_cache_size() {
  std::lock_guard<std::mutex> lock(g_mu);
  int64_t n = 0;
  for (const auto& [key, e] : g_cache) n += e.stamp.alive() ? 1 : 0;
  return n;
}

}  // namespace oar::cpu
