#pragma once
// A threaded walk over every coordinate of a shape that hands the callback the coordinate and
// one offset per operand. Unlike for_each_row it never merges or splits dimensions, so a kernel
// that loops over one more axis inside the callback (a scatter fiber, a padded row) owns every
// element it writes: no two threads touch the same output.
#include <omp.h>

#include <array>
#include <cstdint>
#include <vector>

#include "engine/ops/cpu/loops.h"

namespace oar::cpu {

// f(coord, offsets) for each coordinate of `shape`; offsets[k] = sum coord[d] * strides[k][d].
// `work_per_call` estimates the elements each call touches, to decide on threading.
template <size_t N, typename F>
void for_each_coord(const Shape& shape, const std::array<std::vector<int64_t>, N>& strides,
                    int64_t work_per_call, F&& f) {
  const int64_t total = shape_numel(shape);
  if (total == 0) return;
  const int64_t nd = static_cast<int64_t>(shape.size());
  auto run = [&](int64_t i0, int64_t i1) {
    if (i0 >= i1) return;
    std::vector<int64_t> c(nd > 0 ? nd : 1, 0);
    std::array<int64_t, N> off{};
    int64_t rem = i0;
    for (int64_t d = nd - 1; d >= 0; --d) {
      c[d] = rem % shape[d];
      rem /= shape[d];
      for (size_t k = 0; k < N; ++k) off[k] += c[d] * strides[k][d];
    }
    for (int64_t i = i0; i < i1; ++i) {
      f(static_cast<const int64_t*>(c.data()), off);
      for (int64_t d = nd - 1; d >= 0; --d) {
        ++c[d];
        for (size_t k = 0; k < N; ++k) off[k] += strides[k][d];
        if (c[d] < shape[d]) break;
        for (size_t k = 0; k < N; ++k) off[k] -= shape[d] * strides[k][d];
        c[d] = 0;
      }
    }
  };
  if (total * work_per_call < kGrain || total == 1 || omp_get_max_threads() == 1 ||
      omp_in_parallel()) {
    run(0, total);
    return;
  }
#pragma omp parallel
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    run(total * t / nt, total * (t + 1) / nt);
  }
}

// Copies one element of `size` bytes (1, 2, 4 or 8) without a library call.
inline void copy_element(char* dst, const char* src, size_t size) {
  switch (size) {
    case 1:
      *dst = *src;
      break;
    case 2:
      std::memcpy(dst, src, 2);
      break;
    case 4:
      std::memcpy(dst, src, 4);
      break;
    default:
      std::memcpy(dst, src, 8);
      break;
  }
}

}  // namespace oar::cpu
