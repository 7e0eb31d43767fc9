// CPU kernels for copying (with dtype conversion and broadcasting), filling and random fills.
#include <cmath>
#include <cstring>

#include "engine/core/error.h"
#include "engine/ops/cpu/loops.h"
#include "engine/ops/cpu/onednn.h"

namespace oar::cpu {

std::vector<int64_t> broadcast_byte_strides(const Tensor& t, const Shape& shape) {
  const size_t n = shape.size(), r = static_cast<size_t>(t.dim());
  OAR_CHECK(r <= n, "broadcast: rank ", r, " tensor to shape ", shape_str(shape));
  std::vector<int64_t> s(n, 0);
  const int64_t es = static_cast<int64_t>(dtype_size(t.dtype()));
  for (size_t i = 0; i < r; ++i) {
    const int64_t sz = t.shape()[i];
    const size_t o = i + n - r;
    OAR_CHECK(sz == shape[o] || sz == 1, "broadcast: ", shape_str(t.shape()), " to ",
              shape_str(shape));
    s[o] = sz == 1 ? 0 : t.strides()[i] * es;
  }
  return s;
}

void copy(const Tensor& dst, const Tensor& src) {
  if (dst.dtype() == src.dtype() && dst.shape() == src.shape() && dst.is_contiguous() &&
      src.is_contiguous()) {
    if (dst.raw_data() != src.raw_data()) std::memcpy(dst.raw_data(), src.raw_data(), dst.nbytes());
    return;
  }
  OAR_DTYPE_SWITCH(dst.dtype(), {
    using To = T;
    OAR_DTYPE_SWITCH(src.dtype(), {
      using From = T;
      map1<To, From>(dst, src, [](auto v) { return v; });
    });
  });
}

// dst = src (same shape and dtype, f32 or bf16, any strides but no broadcast dims) by one cached
// oneDNN reorder: a layout change such as NCHW -> NHWC at memory speed (`copy`'s strided loop
// took ~0.3 ms for a 3x224x224 image; conv_layout.h's to_channels_last uses this).
void copy_strided(const Tensor& dst, const Tensor& src) {
  const std::string key = "copy_strided" + onednn::key_of(src) + onednn::key_of(dst);
  auto re = onednn::cached<dnnl::reorder>(key, [&] {
    return std::make_shared<dnnl::reorder>(dnnl::reorder::primitive_desc(
        onednn::engine(), onednn::desc_of(src), onednn::engine(), onednn::desc_of(dst)));
  });
  dnnl::memory from = onednn::memory_of(src), to = onednn::memory_of(dst);
  re->execute(onednn::stream(), from, to);
  onednn::stream().wait();
}

void fill(const Tensor& dst, double value) {
  OAR_DTYPE_SWITCH(dst.dtype(), {
    const T v = from_double<T>(value);
    std::array<char*, 1> base{static_cast<char*>(dst.raw_data())};
    std::array<std::vector<int64_t>, 1> st{byte_strides(dst)};
    for_each_row<1>(dst.shape(), base, st,
                    [&](std::array<char*, 1> p, std::array<int64_t, 1> s, int64_t n) {
                      for (int64_t i = 0; i < n; ++i) std::memcpy(p[0] + i * s[0], &v, sizeof(T));
                    });
  });
}

namespace {
// Calls f(i) -> value for every element of a contiguous tensor, in parallel.
template <typename T, typename F>
void fill_indexed_typed(const Tensor& dst, F f) {
  const int64_t n = dst.numel();
  char* p = static_cast<char*>(dst.raw_data());
#pragma omp parallel for if (n > kGrain)
  for (int64_t i = 0; i < n; ++i) store<T>(p + i * static_cast<int64_t>(sizeof(T)), f(i));
}

template <typename F>
void fill_indexed(const Tensor& dst, F f) {
  OAR_CHECK(dst.is_contiguous(), "random fill needs a contiguous tensor");
  OAR_DTYPE_SWITCH(dst.dtype(), fill_indexed_typed<T>(dst, f));
}
}  // namespace

void fill_uniform(const Tensor& dst, uint64_t seed, uint64_t base, double low, double high) {
  fill_indexed(dst, [=](int64_t i) {
    return low + (high - low) * Generator::to_unit_double(Generator::hash(seed, base + i));
  });
}

void fill_normal(const Tensor& dst, uint64_t seed, uint64_t base, double mean, double std) {
  fill_indexed(dst, [=](int64_t i) {
    double u1 = Generator::to_unit_double(Generator::hash(seed, base + 2 * i));
    double u2 = Generator::to_unit_double(Generator::hash(seed, base + 2 * i + 1));
    if (u1 < 1e-300) u1 = 1e-300;
    return mean + std * std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  });
}

void fill_randint(const Tensor& dst, uint64_t seed, uint64_t base, int64_t low, int64_t high) {
  const uint64_t range = static_cast<uint64_t>(high - low);
  fill_indexed(dst, [=](int64_t i) {
    return static_cast<double>(low + static_cast<int64_t>(Generator::hash(seed, base + i) % range));
  });
}

}  // namespace oar::cpu
