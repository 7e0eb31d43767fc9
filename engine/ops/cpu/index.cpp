#include <algorithm>
#include <utility>

#include "engine/core/error.h"
#include "engine/ops/cpu/coords.h"
#include "engine/ops/cpu/loops.h"

namespace oar::cpu {

void copy(const Tensor& dst, const Tensor& src);

std::pair<int64_t, int64_t> wrap_indices(const Tensor& out, const Tensor& idx, int64_t n,
                                         bool allow_negative) {
  copy(out, idx);
  int64_t* p = out.data<int64_t>();
  const int64_t count = out.numel();
  const int64_t lo = allow_negative ? -n : 0;
  int64_t bad = count;
#pragma omp parallel for reduction(min : bad) if (count > kGrain)
  for (int64_t i = 0; i < count; ++i) {
    const int64_t v = p[i];
    if (v < lo || v >= n) {
      bad = std::min(bad, i);
    } else if (v < 0) {
      p[i] = v + n;
    }
  }
  if (bad == count) return {-1, 0};
  return {bad, p[bad]};
}

namespace {

// Per element of `shape`: out = x at (offset with dim's stride zeroed) + idx * x_dim_stride.
void gather_strided(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& idx,
                    const std::vector<int64_t>& idx_byte_strides) {
  const size_t es = dtype_size(x.dtype());
  std::vector<int64_t> xs = byte_strides(x);
  const int64_t step = xs[dim];
  xs[dim] = 0;
  std::array<char*, 3> base{static_cast<char*>(out.raw_data()), static_cast<char*>(idx.raw_data()),
                            static_cast<char*>(x.raw_data())};
  std::array<std::vector<int64_t>, 3> st{byte_strides(out), idx_byte_strides, xs};
  for_each_row<3>(out.shape(), base, st,
                  [&](std::array<char*, 3> p, std::array<int64_t, 3> s, int64_t n) {
                    for (int64_t i = 0; i < n; ++i) {
                      const int64_t v = *reinterpret_cast<const int64_t*>(p[1] + i * s[1]);
                      copy_element(p[0] + i * s[0], p[2] + i * s[2] + v * step, es);
                    }
                  });
}

int64_t prod(const Shape& s, int64_t b, int64_t e) {
  int64_t r = 1;
  for (int64_t i = b; i < e; ++i) r *= s[i];
  return r;
}

template <typename T>
void index_add_typed(const Tensor& out, const Tensor& src, int64_t dim, const Tensor& idx) {
  using C = typename compute_type<T>::type;
  const int64_t n = out.size(dim), K = idx.numel();
  const int64_t outer = prod(out.shape(), 0, dim);
  const int64_t inner = prod(out.shape(), dim + 1, out.dim());
  const int64_t* ip = idx.data<int64_t>();
  T* op = static_cast<T*>(out.raw_data());
  const T* sp = static_cast<const T*>(src.raw_data());
  const int64_t rows = outer * n;
  // Each thread owns a range of destination rows and scans all indices for them: no races,
  // and the summation order of every row is the index order, whatever the thread count.
  auto run = [&](int64_t r0, int64_t r1) {
    if (r0 >= r1) return;
    for (int64_t o = r0 / n; o <= (r1 - 1) / n; ++o) {
      for (int64_t k = 0; k < K; ++k) {
        const int64_t r = o * n + ip[k];
        if (r < r0 || r >= r1) continue;
        T* dst = op + r * inner;
        const T* s = sp + (o * K + k) * inner;
        for (int64_t i = 0; i < inner; ++i) {
          if constexpr (std::is_same_v<C, bool>) {
            dst[i] = dst[i] || s[i];
          } else if constexpr (std::is_same_v<C, T>) {
            dst[i] = static_cast<T>(dst[i] + s[i]);
          } else {
            const char* sc = reinterpret_cast<const char*>(s + i);
            char* dc = reinterpret_cast<char*>(dst + i);
            store<T>(dc, load<T>(dc) + load<T>(sc));
          }
        }
      }
    }
  };
  if (outer * K * inner < kGrain || rows == 1 || omp_get_max_threads() == 1 || omp_in_parallel()) {
    run(0, rows);
    return;
  }
#pragma omp parallel
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    run(rows * t / nt, rows * (t + 1) / nt);
  }
}

template <typename T>
void scatter_add_typed(const Tensor& out, int64_t dim, const Tensor& idx, const Tensor& src) {
  using C = typename compute_type<T>::type;
  const int64_t rank = idx.dim();
  // Walk every fiber along dim (all other coordinates fixed) on one thread: the fibers write
  // disjoint output elements.
  Shape outer;
  std::array<std::vector<int64_t>, 3> st;
  const std::vector<int64_t> obs = byte_strides(out), ibs = byte_strides(idx),
                             sbs = byte_strides(src);
  for (int64_t d = 0; d < rank; ++d) {
    if (d == dim) continue;
    outer.push_back(idx.size(d));
    st[0].push_back(obs[d]);
    st[1].push_back(ibs[d]);
    st[2].push_back(sbs[d]);
  }
  const int64_t K = idx.size(dim);
  const int64_t os = obs[dim], is = ibs[dim], ss = sbs[dim];
  char* ob = static_cast<char*>(out.raw_data());
  const char* ib = static_cast<const char*>(idx.raw_data());
  const char* sb = static_cast<const char*>(src.raw_data());
  for_each_coord<3>(outer, st, K, [&](const int64_t*, const std::array<int64_t, 3>& off) {
    for (int64_t k = 0; k < K; ++k) {
      const int64_t v = *reinterpret_cast<const int64_t*>(ib + off[1] + k * is);
      char* dst = ob + off[0] + v * os;
      const C add = load<T>(sb + off[2] + k * ss);
      if constexpr (std::is_same_v<C, bool>) {
        store<T>(dst, load<T>(dst) || add);
      } else {
        store<T>(dst, static_cast<C>(load<T>(dst) + add));
      }
    }
  });
}

}  // namespace

void index_select(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& idx) {
  if (!x.is_contiguous()) {
    std::vector<int64_t> is(out.dim(), 0);
    is[dim] = static_cast<int64_t>(sizeof(int64_t));
    gather_strided(out, x, dim, idx, is);
    return;
  }
  const int64_t n = x.size(dim), K = idx.numel();
  const int64_t outer = prod(x.shape(), 0, dim);
  const int64_t inner = prod(x.shape(), dim + 1, x.dim());
  const size_t row = static_cast<size_t>(inner) * dtype_size(x.dtype());
  const int64_t* ip = idx.data<int64_t>();
  const char* xp = static_cast<const char*>(x.raw_data());
  char* op = static_cast<char*>(out.raw_data());
  const int64_t rows = outer * K;
#pragma omp parallel for if (rows * inner > kGrain && rows > 1)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t o = r / K, k = r % K;
    std::memcpy(op + r * row, xp + (o * n + ip[k]) * row, row);
  }
}

void index_add(const Tensor& out, const Tensor& src, int64_t dim, const Tensor& idx) {
  OAR_DTYPE_SWITCH(out.dtype(), index_add_typed<T>(out, src, dim, idx));
}

void gather(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& idx) {
  gather_strided(out, x, dim, idx, byte_strides(idx));
}

void scatter_add(const Tensor& out, int64_t dim, const Tensor& idx, const Tensor& src) {
  OAR_DTYPE_SWITCH(out.dtype(), scatter_add_typed<T>(out, dim, idx, src));
}

}  // namespace oar::cpu
