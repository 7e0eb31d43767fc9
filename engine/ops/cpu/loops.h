#pragma once
// Threaded strided loops for CPU kernels that oneDNN does not cover.
//
// for_each_row walks an N-operand, N-d index space in rows of the innermost (collapsed)
// dimension and hands each row to a callback with byte pointers and byte strides, so inner
// loops can specialise the contiguous case. Rows are split across the shared OpenMP pool.
#include <omp.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

#include "engine/tensor/tensor.h"

namespace oar::cpu {

constexpr int64_t kGrain = 32768;  // elements below which a loop stays on one thread

template <size_t N, typename F>
void for_each_row(const Shape& shape, const std::array<char*, N>& base,
                  const std::array<std::vector<int64_t>, N>& byte_strides, F&& f) {
  const int64_t numel = shape_numel(shape);
  if (numel == 0) return;
  // Collapse: drop size-1 dims, merge dims that are contiguous with their inner neighbour.
  std::vector<int64_t> sizes;
  std::array<std::vector<int64_t>, N> st;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    sizes.push_back(shape[d]);
    for (size_t k = 0; k < N; ++k) st[k].push_back(byte_strides[k][d]);
  }
  if (sizes.empty()) {
    sizes.push_back(1);
    for (size_t k = 0; k < N; ++k) st[k].push_back(0);
  }
  for (int64_t d = static_cast<int64_t>(sizes.size()) - 2; d >= 0; --d) {
    bool mergeable = true;
    for (size_t k = 0; k < N; ++k)
      if (st[k][d] != st[k][d + 1] * sizes[d + 1]) mergeable = false;
    if (!mergeable) continue;
    sizes[d] *= sizes[d + 1];
    sizes.erase(sizes.begin() + d + 1);
    for (size_t k = 0; k < N; ++k) {
      st[k][d] = st[k][d + 1];
      st[k].erase(st[k].begin() + d + 1);
    }
  }
  const int64_t nd = static_cast<int64_t>(sizes.size());
  const int64_t inner = sizes[nd - 1];
  const int64_t rows = numel / inner;
  std::array<int64_t, N> inner_st;
  for (size_t k = 0; k < N; ++k) inner_st[k] = st[k][nd - 1];

  auto run_rows = [&](int64_t r0, int64_t r1) {
    if (r0 >= r1) return;
    std::vector<int64_t> idx(nd > 1 ? nd - 1 : 1, 0);
    std::array<char*, N> p = base;
    int64_t rem = r0;
    for (int64_t d = nd - 2; d >= 0; --d) {
      idx[d] = rem % sizes[d];
      rem /= sizes[d];
      for (size_t k = 0; k < N; ++k) p[k] += idx[d] * st[k][d];
    }
    for (int64_t r = r0; r < r1; ++r) {
      f(p, inner_st, inner);
      for (int64_t d = nd - 2; d >= 0; --d) {  // increment the row counter
        ++idx[d];
        for (size_t k = 0; k < N; ++k) p[k] += st[k][d];
        if (idx[d] < sizes[d]) break;
        for (size_t k = 0; k < N; ++k) p[k] -= sizes[d] * st[k][d];
        idx[d] = 0;
      }
    }
  };

  const int threads = omp_get_max_threads();
  if (numel < kGrain || threads == 1 || omp_in_parallel()) {
    run_rows(0, rows);
    return;
  }
  if (rows == 1) {  // one long row: split it
#pragma omp parallel
    {
      const int t = omp_get_thread_num(), nt = omp_get_num_threads();
      const int64_t b = inner * t / nt, e = inner * (t + 1) / nt;
      std::array<char*, N> p = base;
      for (size_t k = 0; k < N; ++k) p[k] += b * inner_st[k];
      if (e > b) f(p, inner_st, e - b);
    }
    return;
  }
#pragma omp parallel
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    run_rows(rows * t / nt, rows * (t + 1) / nt);
  }
}

// Byte strides of a tensor (element strides times element size).
inline std::vector<int64_t> byte_strides(const Tensor& t) {
  std::vector<int64_t> s(t.strides().begin(), t.strides().end());
  const int64_t es = static_cast<int64_t>(dtype_size(t.dtype()));
  for (auto& v : s) v *= es;
  return s;
}
// Byte strides of `t` broadcast to `shape` (0 for broadcast dimensions).
std::vector<int64_t> broadcast_byte_strides(const Tensor& t, const Shape& shape);

// Loads and stores through the compute type (float for f32/bf16/f16, the type itself otherwise).
template <typename T> struct compute_type { using type = T; };
template <> struct compute_type<bf16> { using type = float; };
template <> struct compute_type<f16> { using type = float; };
template <typename T>
inline typename compute_type<T>::type load(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  if constexpr (std::is_same_v<T, bf16>) return bf16_to_float(v.bits);
  else if constexpr (std::is_same_v<T, f16>) return f16_to_float(v.bits);
  else return v;
}
template <typename T, typename V>
inline void store(char* p, V v) {
  T out;
  if constexpr (std::is_same_v<T, bf16>) out.bits = float_to_bf16(static_cast<float>(v));
  else if constexpr (std::is_same_v<T, f16>) out.bits = float_to_f16(static_cast<float>(v));
  else out = static_cast<T>(v);
  std::memcpy(p, &out, sizeof(T));
}

// out[i] = f(a[i]) with out contiguous of a's (broadcast) shape; Tout/Ta are storage types,
// f works on compute types. The contiguous f32 loops are `omp simd` so that selects (relu and
// its backward) vectorise too; out may be an input (in place) but must not partly overlap one.
// Each row works on its own copy of f, so f's captured values cannot alias out.
template <typename Tout, typename Ta, typename F>
void map1(const Tensor& out, const Tensor& a, F f) {
  std::array<char*, 2> base{static_cast<char*>(out.raw_data()), static_cast<char*>(a.raw_data())};
  std::array<std::vector<int64_t>, 2> st{byte_strides(out), broadcast_byte_strides(a, out.shape())};
  for_each_row<2>(out.shape(), base, st, [&, f](std::array<char*, 2> p, std::array<int64_t, 2> s, int64_t n) {
    if constexpr (std::is_same_v<Tout, float> && std::is_same_v<Ta, float>) {
      if (s[0] == 4 && s[1] == 4) {
        float* o = reinterpret_cast<float*>(p[0]);
        const float* x = reinterpret_cast<const float*>(p[1]);
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) o[i] = static_cast<float>(f(x[i]));
        return;
      }
      if (s[0] == 4 && s[1] == 0) {  // a broadcast value (expand(...).contiguous())
        float* o = reinterpret_cast<float*>(p[0]);
        const float v = static_cast<float>(f(*reinterpret_cast<const float*>(p[1])));
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) o[i] = v;
        return;
      }
    }
    for (int64_t i = 0; i < n; ++i) store<Tout>(p[0] + i * s[0], f(load<Ta>(p[1] + i * s[1])));
  });
}

// out[i] = f(a[i], b[i]) with broadcasting of a and b to out's shape.
template <typename Tout, typename Ta, typename Tb, typename F>
void map2(const Tensor& out, const Tensor& a, const Tensor& b, F f) {
  std::array<char*, 3> base{static_cast<char*>(out.raw_data()), static_cast<char*>(a.raw_data()),
                            static_cast<char*>(b.raw_data())};
  std::array<std::vector<int64_t>, 3> st{byte_strides(out), broadcast_byte_strides(a, out.shape()),
                                         broadcast_byte_strides(b, out.shape())};
  for_each_row<3>(out.shape(), base, st, [&, f](std::array<char*, 3> p, std::array<int64_t, 3> s, int64_t n) {
    if constexpr (std::is_same_v<Tout, float> && std::is_same_v<Ta, float> &&
                  std::is_same_v<Tb, float>) {
      float* o = reinterpret_cast<float*>(p[0]);
      const float* x = reinterpret_cast<const float*>(p[1]);
      const float* y = reinterpret_cast<const float*>(p[2]);
      if (s[0] == 4 && s[1] == 4 && s[2] == 4) {
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], y[i]);
        return;
      }
      if (s[0] == 4 && s[1] == 4 && s[2] == 0) {
        const float yv = *y;
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], yv);
        return;
      }
      if (s[0] == 4 && s[1] == 0 && s[2] == 4) {
        const float xv = *x;
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) o[i] = f(xv, y[i]);
        return;
      }
    }
    for (int64_t i = 0; i < n; ++i)
      store<Tout>(p[0] + i * s[0], f(load<Ta>(p[1] + i * s[1]), load<Tb>(p[2] + i * s[2])));
  });
}

// out[i] = f(a[i], b[i], c[i]) with broadcasting.
template <typename Tout, typename Ta, typename Tb, typename Tc, typename F>
void map3(const Tensor& out, const Tensor& a, const Tensor& b, const Tensor& c, F f) {
  std::array<char*, 4> base{static_cast<char*>(out.raw_data()), static_cast<char*>(a.raw_data()),
                            static_cast<char*>(b.raw_data()), static_cast<char*>(c.raw_data())};
  std::array<std::vector<int64_t>, 4> st{byte_strides(out), broadcast_byte_strides(a, out.shape()),
                                         broadcast_byte_strides(b, out.shape()),
                                         broadcast_byte_strides(c, out.shape())};
  for_each_row<4>(out.shape(), base, st, [&](std::array<char*, 4> p, std::array<int64_t, 4> s, int64_t n) {
    for (int64_t i = 0; i < n; ++i)
      store<Tout>(p[0] + i * s[0], f(load<Ta>(p[1] + i * s[1]), load<Tb>(p[2] + i * s[2]),
                                     load<Tc>(p[3] + i * s[3])));
  });
}

}  // namespace oar::cpu

// OAR_FLOAT_SWITCH(dt, op, T, body): body with T in {float, bf16, f16}; throws for other dtypes.
#define OAR_FLOAT_SWITCH(dt, opname, ...)                                                   \
  switch (dt) {                                                                              \
    OAR_DTYPE_CASE(f32, float, __VA_ARGS__)                                                  \
    OAR_DTYPE_CASE(bf16, ::oar::bf16, __VA_ARGS__)                                           \
    OAR_DTYPE_CASE(f16, ::oar::f16, __VA_ARGS__)                                             \
    default:                                                                                 \
      OAR_FAIL(opname, ": dtype ", ::oar::dtype_name(dt), " not supported (floating types only)"); \
  }
