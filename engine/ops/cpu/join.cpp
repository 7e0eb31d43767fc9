#include <algorithm>

#include "engine/core/error.h"
#include "engine/ops/cpu/coords.h"
#include "engine/ops/cpu/loops.h"

namespace oar {
enum class PadMode { constant, reflect, edge };

namespace cpu {

void copy(const Tensor& dst, const Tensor& src);

namespace {

int64_t prod(const Shape& s, int64_t b, int64_t e) {
  int64_t r = 1;
  for (int64_t i = b; i < e; ++i) r *= s[i];
  return r;
}

// One large memcpy split across the pool.
void parallel_memcpy(char* dst, const char* src, int64_t n) {
  if (n < 16 * kGrain || omp_get_max_threads() == 1 || omp_in_parallel()) {
    std::memcpy(dst, src, static_cast<size_t>(n));
    return;
  }
#pragma omp parallel
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t b = n * t / nt, e = n * (t + 1) / nt;
    std::memcpy(dst + b, src + b, static_cast<size_t>(e - b));
  }
}

struct Piece {
  const char* src;
  int64_t row_bytes;  // bytes of this input per outer index
  int64_t dst_off;    // its byte offset inside an output row
};

}  // namespace

void concat(const Tensor& out, const std::vector<Tensor>& xs, int64_t dim) {
  const int64_t es = static_cast<int64_t>(dtype_size(out.dtype()));
  const int64_t outer = prod(out.shape(), 0, dim);
  const int64_t inner = prod(out.shape(), dim + 1, out.dim());
  const int64_t out_row = out.size(dim) * inner * es;
  char* ob = static_cast<char*>(out.raw_data());
  std::vector<Piece> pieces;
  int64_t off = 0;
  for (const Tensor& x : xs) {
    const int64_t n = x.size(dim);
    if (x.is_contiguous()) {
      if (n * inner > 0)
        pieces.push_back(
            {static_cast<const char*>(x.raw_data()), n * inner * es, off * inner * es});
    } else {
      copy(out.narrow(dim, off, n), x);  // strided input: the generic copy walks it
    }
    off += n;
  }
  if (pieces.empty() || outer == 0) return;
  const int64_t np = static_cast<int64_t>(pieces.size());
  if (outer >= 4 * omp_get_max_threads()) {
#pragma omp parallel for if (outer * out_row > 4 * kGrain)
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < np; ++i) {
        const Piece& p = pieces[i];
        std::memcpy(ob + o * out_row + p.dst_off, p.src + o * p.row_bytes,
                    static_cast<size_t>(p.row_bytes));
      }
    return;
  }
  for (int64_t o = 0; o < outer; ++o)
    for (const Piece& p : pieces)
      parallel_memcpy(ob + o * out_row + p.dst_off, p.src + o * p.row_bytes, p.row_bytes);
}

namespace {
int64_t pad_source(int64_t o, int64_t before, int64_t n, PadMode mode) {
  const int64_t p = o - before;
  if (p >= 0 && p < n) return p;
  if (mode == PadMode::constant) return -1;
  if (mode == PadMode::edge) return p < 0 ? 0 : n - 1;
  return p < 0 ? -p : 2 * (n - 1) - p;
}
}  // namespace

void pad(const Tensor& out, const Tensor& x, const std::vector<int64_t>& pads, PadMode mode,
         double value) {
  const size_t es = dtype_size(out.dtype());
  char fill[8] = {};
  OAR_DTYPE_SWITCH(out.dtype(), {
    const T v = from_double<T>(value);
    std::memcpy(fill, &v, sizeof(T));
  });
  char* ob = static_cast<char*>(out.raw_data());
  const char* xb = static_cast<const char*>(x.raw_data());
  const int64_t rank = x.dim();
  if (out.numel() == 0) return;
  if (rank == 0) {
    copy_element(ob, xb, es);
    return;
  }
  const std::vector<int64_t> obs = byte_strides(out), xbs = byte_strides(x);
  Shape outer(out.shape().begin(), out.shape().end() - 1);
  std::array<std::vector<int64_t>, 1> st{std::vector<int64_t>(obs.begin(), obs.end() - 1)};
  const int64_t m = out.size(-1), n = x.size(-1), b = pads[2 * (rank - 1)], xl = xbs[rank - 1];
  const int64_t esl = static_cast<int64_t>(es);
  // The slice [lo, hi) of an output row that reads x in constant mode.
  const int64_t lo = std::clamp<int64_t>(b, 0, m), hi = std::clamp<int64_t>(b + n, lo, m);
  for_each_coord<1>(outer, st, m, [&](const int64_t* c, const std::array<int64_t, 1>& off) {
    char* dst = ob + off[0];
    int64_t src = 0;
    for (int64_t d = 0; d + 1 < rank; ++d) {
      const int64_t p = pad_source(c[d], pads[2 * d], x.size(d), mode);
      if (p < 0) {
        for (int64_t o = 0; o < m; ++o) copy_element(dst + o * esl, fill, es);
        return;
      }
      src += p * xbs[d];
    }
    const char* row = xb + src;
    if (mode == PadMode::constant) {
      for (int64_t o = 0; o < lo; ++o) copy_element(dst + o * esl, fill, es);
      if (xl == esl) {
        std::memcpy(dst + lo * esl, row + (lo - b) * esl, static_cast<size_t>((hi - lo) * esl));
      } else {
        for (int64_t o = lo; o < hi; ++o) copy_element(dst + o * esl, row + (o - b) * xl, es);
      }
      for (int64_t o = hi; o < m; ++o) copy_element(dst + o * esl, fill, es);
      return;
    }
    for (int64_t o = 0; o < m; ++o)
      copy_element(dst + o * esl, row + pad_source(o, b, n, mode) * xl, es);
  });
}

}  // namespace cpu
}  // namespace oar
