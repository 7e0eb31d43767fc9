#include "engine/ops/pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include "engine/autograd/grad_mode.h"
#include "engine/core/error.h"
#include "engine/ops/binary.h"
#include "engine/ops/conv_layout.h"
#include "engine/ops/reduce.h"
#include "tests/support/gradcheck.h"

using namespace oar;
using oar::testing::rand_input;

namespace {

// Distinct values 0.05 apart in random order, so max pooling has no ties (even under the
// gradient check's perturbation).
Tensor distinct_input(const Shape& shape, uint64_t seed) {
  std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
  std::iota(v.begin(), v.end(), 0.0f);
  std::mt19937 rng(static_cast<unsigned>(seed));
  std::shuffle(v.begin(), v.end(), rng);
  for (auto& e : v) e = e * 0.05f - 1.0f;
  return tensor<float>(v, shape).set_requires_grad();
}

struct Dims {
  Shape k, s, d, pl, pr;
};

// PyTorch's pooling written out directly: output size, window positions, divisors.
Tensor ref_pool(const Tensor& x_in, const PoolParams& p, bool is_max) {
  Tensor x = x_in.detach().contiguous();
  const auto xv = x.to_vector<float>();
  const int64_t nd = x.dim() - 2;
  Dims g;
  for (int64_t d = 0; d < nd; ++d) {
    g.k.push_back(p.kernel[d]);
    g.s.push_back(p.stride.empty() ? p.kernel[d] : p.stride[d]);
    g.d.push_back(p.dilation.empty() ? 1 : p.dilation[d]);
    g.pl.push_back(p.padding.empty() ? 0 : p.padding[d]);
    g.pr.push_back(p.padding.empty() ? 0 : p.padding[p.padding.size() == size_t(nd) ? d : nd + d]);
  }
  // Pad to 3 spatial dims with trivial ones.
  std::array<int64_t, 3> in{1, 1, 1}, out{1, 1, 1}, k{1, 1, 1}, s{1, 1, 1}, dl{1, 1, 1},
      pl{0, 0, 0}, pr{0, 0, 0};
  Shape oshape{x.size(0), x.size(1)};
  for (int64_t d = 0; d < nd; ++d) {
    const int64_t j = 3 - nd + d;
    in[j] = x.size(2 + d);
    k[j] = g.k[d], s[j] = g.s[d], dl[j] = g.d[d], pl[j] = g.pl[d], pr[j] = g.pr[d];
    const double span = double(in[j] + pl[j] + pr[j] - dl[j] * (k[j] - 1) - 1) / double(s[j]);
    int64_t o = int64_t(p.ceil_mode ? std::ceil(span) : std::floor(span)) + 1;
    if (p.ceil_mode && (o - 1) * s[j] >= in[j] + pl[j]) --o;
    out[j] = o;
    oshape.push_back(o);
  }
  std::vector<float> r;
  const int64_t planes = x.size(0) * x.size(1), isz = in[0] * in[1] * in[2];
  for (int64_t pl0 = 0; pl0 < planes; ++pl0)
    for (int64_t a = 0; a < out[0]; ++a)
      for (int64_t b = 0; b < out[1]; ++b)
        for (int64_t c = 0; c < out[2]; ++c) {
          const std::array<int64_t, 3> o{a, b, c};
          double best = -std::numeric_limits<double>::infinity(), acc = 0;
          int64_t count = 0, full = 1;
          std::array<int64_t, 3> lo, hi;
          for (int j = 0; j < 3; ++j) {
            lo[j] = o[j] * s[j] - pl[j];
            hi[j] = std::min(lo[j] + k[j], in[j] + pr[j]);
            full *= hi[j] - lo[j];
          }
          for (int64_t i0 = 0; i0 < k[0]; ++i0)
            for (int64_t i1 = 0; i1 < k[1]; ++i1)
              for (int64_t i2 = 0; i2 < k[2]; ++i2) {
                const std::array<int64_t, 3> id{lo[0] + i0 * dl[0], lo[1] + i1 * dl[1],
                                                lo[2] + i2 * dl[2]};
                bool inside = true;
                for (int j = 0; j < 3; ++j) inside = inside && id[j] >= 0 && id[j] < in[j];
                if (!inside) continue;
                const double v = xv[pl0 * isz + (id[0] * in[1] + id[1]) * in[2] + id[2]];
                best = std::max(best, v);
                acc += v;
                ++count;
              }
          r.push_back(float(is_max ? best : acc / double(p.count_include_pad ? full : count)));
        }
  return tensor<float>(r, oshape);
}

// PyTorch's adaptive windows written out directly.
Tensor ref_adaptive(const Tensor& x_in, const Shape& out_sz, bool is_max) {
  Tensor x = x_in.detach().contiguous();
  const auto xv = x.to_vector<float>();
  const int64_t nd = x.dim() - 2;
  std::array<int64_t, 3> in{1, 1, 1}, out{1, 1, 1};
  Shape oshape{x.size(0), x.size(1)};
  for (int64_t d = 0; d < nd; ++d) {
    in[3 - nd + d] = x.size(2 + d);
    out[3 - nd + d] = out_sz[d];
    oshape.push_back(out_sz[d]);
  }
  auto st = [](int64_t i, int64_t o, int64_t n) { return int64_t(std::floor(double(i * n) / o)); };
  auto en = [](int64_t i, int64_t o, int64_t n) {
    return int64_t(std::ceil(double((i + 1) * n) / o));
  };
  std::vector<float> r;
  const int64_t planes = x.size(0) * x.size(1), isz = in[0] * in[1] * in[2];
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t a = 0; a < out[0]; ++a)
      for (int64_t b = 0; b < out[1]; ++b)
        for (int64_t c = 0; c < out[2]; ++c) {
          double best = -std::numeric_limits<double>::infinity(), acc = 0;
          int64_t count = 0;
          for (int64_t i = st(a, out[0], in[0]); i < en(a, out[0], in[0]); ++i)
            for (int64_t j = st(b, out[1], in[1]); j < en(b, out[1], in[1]); ++j)
              for (int64_t l = st(c, out[2], in[2]); l < en(c, out[2], in[2]); ++l) {
                const double v = xv[p * isz + (i * in[1] + j) * in[2] + l];
                best = std::max(best, v);
                acc += v;
                ++count;
              }
          r.push_back(float(is_max ? best : acc / double(count)));
        }
  return tensor<float>(r, oshape);
}

void expect_close(const Tensor& got, const Tensor& want, float tol = 1e-5f) {
  ASSERT_EQ(got.shape(), want.shape());
  const auto a = got.to_vector<float>(), b = want.to_vector<float>();
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], tol) << "element " << i;
}

PoolParams params(Shape k, Shape s = {}, Shape pad = {}, bool ceil = false, bool include = false,
                  Shape dil = {}) {
  PoolParams p;
  p.kernel = std::move(k);
  p.stride = std::move(s);
  p.padding = std::move(pad);
  p.dilation = std::move(dil);
  p.ceil_mode = ceil;
  p.count_include_pad = include;
  return p;
}

}  // namespace

TEST(Pool, MaxMatchesReference) {
  const std::vector<std::pair<Shape, PoolParams>> cases = {
      {{2, 3, 11}, params({3}, {2}, {1})},
      {{2, 3, 11}, params({3}, {2}, {1}, true, false, {2})},
      {{2, 3, 7, 9}, params({3, 2}, {2, 1}, {1, 0})},
      {{2, 3, 7, 9}, params({3, 3}, {2, 2}, {1, 1}, true)},
      {{1, 2, 8, 8}, params({2, 2})},
      {{1, 2, 9, 10}, params({3, 3}, {2, 3}, {1, 1}, false, false, {2, 1})},
      {{1, 2, 5, 6, 7}, params({2, 3, 2}, {2, 2, 1}, {1, 1, 0}, true)},
      {{2, 2, 6}, params({4}, {3}, {1, 2})},  // begins then ends
  };
  for (const auto& [shape, p] : cases) {
    Tensor x = rand_input(shape, 3);
    expect_close(max_pool(x, p), ref_pool(x, p, true));
    NoGradGuard ng;  // inference primitive, no workspace
    expect_close(max_pool(x, p), ref_pool(x, p, true));
  }
}

TEST(Pool, AvgMatchesReference) {
  const std::vector<std::pair<Shape, PoolParams>> cases = {
      {{2, 3, 11}, params({3}, {2}, {1})},
      {{2, 3, 11}, params({3}, {2}, {1}, false, true)},
      {{2, 3, 6}, params({3}, {2}, {1}, true, true)},  // last window past the padding
      {{2, 3, 7, 9}, params({3, 2}, {2, 1}, {1, 1}, true, false)},
      {{2, 3, 7, 9}, params({3, 3}, {2, 2}, {1, 1}, true, true)},
      {{1, 2, 5, 6, 7}, params({2, 3, 2}, {2, 2, 1}, {1, 1, 0}, true, true)},
      {{1, 2, 5, 6, 7}, params({3, 3, 3}, {2, 2, 2}, {1, 1, 1}, false, false)},
  };
  for (const auto& [shape, p] : cases) {
    Tensor x = rand_input(shape, 5);
    SCOPED_TRACE(shape_str(shape));
    expect_close(avg_pool(x, p), ref_pool(x, p, false));
  }
}

TEST(Pool, MaxGradients) {
  const std::vector<std::pair<Shape, PoolParams>> cases = {
      {{1, 2, 9}, params({3}, {2}, {1}, true, false, {2})},
      {{1, 2, 5, 6}, params({3, 2}, {2, 1}, {1, 1}, true)},
      {{1, 1, 3, 4, 5}, params({2, 2, 3}, {1, 2, 2}, {1, 0, 1})},
  };
  for (const auto& [shape, p] : cases) {
    Tensor x = distinct_input(shape, 11);
    EXPECT_GRADCHECK([p = p](const std::vector<Tensor>& in) { return max_pool(in[0], p); },
                     std::vector<Tensor>{x});
  }
}

TEST(Pool, AvgGradients) {
  const std::vector<std::pair<Shape, PoolParams>> cases = {
      {{1, 2, 6}, params({3}, {2}, {1}, true, true)},
      {{1, 2, 5, 6}, params({3, 2}, {2, 1}, {1, 1}, true, false)},
      {{1, 2, 5, 7}, params({3, 3}, {2, 2}, {1, 1}, true, true)},
      {{1, 1, 3, 4, 5}, params({2, 2, 3}, {1, 2, 2}, {1, 0, 1})},
  };
  for (const auto& [shape, p] : cases) {
    Tensor x = rand_input(shape, 13);
    EXPECT_GRADCHECK([p = p](const std::vector<Tensor>& in) { return avg_pool(in[0], p); },
                     std::vector<Tensor>{x});
  }
}

TEST(Pool, NonContiguousInput) {
  Tensor base = distinct_input({2, 9, 3, 8}, 2);
  Tensor x = base.permute({0, 2, 1, 3}).slice(3, 0, 8, 2);  // [2, 3, 9, 4], strided
  ASSERT_FALSE(x.is_contiguous());
  const PoolParams p = params({3, 2}, {2, 1}, {1, 1}, true);
  expect_close(max_pool(x, p), ref_pool(x, p, true));
  expect_close(avg_pool(x, p), ref_pool(x, p, false));
  EXPECT_GRADCHECK(
      [p](const std::vector<Tensor>& in) {
        return max_pool(in[0].permute({0, 2, 1, 3}).slice(3, 0, 8, 2), p);
      },
      std::vector<Tensor>{base});
  expect_close(adaptive_avg_pool(x, {4, 3}), ref_adaptive(x, {4, 3}, false));
}

TEST(Pool, AdaptiveMatchesReference) {
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{2, 3, 10}, {4}},
      {{2, 3, 7, 9}, {3, 4}},
      {{2, 3, 8, 6}, {4, 3}},  // uniform
      {{1, 2, 5, 7, 6}, {2, 3, 4}},
      {{1, 2, 4, 6, 9}, {2, 3, 3}},  // last: uniform
      {{2, 2, 5, 5}, {7, 6}},        // more outputs than inputs
  };
  for (const auto& [shape, out] : cases) {
    SCOPED_TRACE(shape_str(shape) + " -> " + shape_str(out));
    Tensor x = rand_input(shape, 17);
    expect_close(adaptive_avg_pool(x, out), ref_adaptive(x, out, false));
    expect_close(adaptive_max_pool(x, out), ref_adaptive(x, out, true));
  }
}

TEST(Pool, AdaptiveGradients) {
  for (const auto& [shape, out] : std::vector<std::pair<Shape, Shape>>{
           {{1, 2, 7, 9}, {3, 4}}, {{1, 2, 8}, {4}}, {{1, 1, 3, 5, 4}, {2, 3, 3}}}) {
    Tensor x = distinct_input(shape, 19);
    const Shape o = out;
    EXPECT_GRADCHECK([o](const std::vector<Tensor>& in) { return adaptive_avg_pool(in[0], o); },
                     std::vector<Tensor>{x});
    EXPECT_GRADCHECK([o](const std::vector<Tensor>& in) { return adaptive_max_pool(in[0], o); },
                     std::vector<Tensor>{x});
  }
}

TEST(Pool, Global) {
  Tensor x = distinct_input({2, 3, 5, 4}, 23);
  Tensor a = global_avg_pool(x), m = global_max_pool(x);
  EXPECT_EQ(a.shape(), (Shape{2, 3, 1, 1}));
  expect_close(a, ref_adaptive(x, {1, 1}, false));
  expect_close(m, ref_adaptive(x, {1, 1}, true));
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return global_avg_pool(in[0]); },
                   std::vector<Tensor>{x});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return global_max_pool(in[0]); },
                   std::vector<Tensor>{x});
  EXPECT_EQ(global_max_pool(rand_input({2, 3, 7}, 1)).shape(), (Shape{2, 3, 1}));
}

TEST(Pool, Bf16CloseToF32) {
  Tensor x = rand_input({2, 3, 9, 8}, 29);
  const PoolParams p = params({3, 3}, {2, 2}, {1, 1}, true);
  expect_close(max_pool(x.detach().to(DType::bf16), p).to(DType::f32),
               max_pool(x.detach().to(DType::bf16).to(DType::f32), p), 1e-6f);
  expect_close(avg_pool(x.detach().to(DType::bf16), p).to(DType::f32), avg_pool(x, p), 2e-2f);
  expect_close(adaptive_avg_pool(x.detach().to(DType::bf16), {4, 3}).to(DType::f32),
               adaptive_avg_pool(x, {4, 3}), 2e-2f);
}

TEST(Pool, BadInputsThrow) {
  Tensor x = rand_input({2, 3, 8, 8}, 1);
  EXPECT_THROW(max_pool(x, params({2})), Error);                                   // kernel rank
  EXPECT_THROW(max_pool(x, params({2, 2}, {1})), Error);                           // stride rank
  EXPECT_THROW(max_pool(x, params({2, 2}, {}, {2, 2})), Error);                    // padding > k/2
  EXPECT_THROW(max_pool(x, params({2, 2}, {0, 1})), Error);                        // zero stride
  EXPECT_THROW(max_pool(x, params({9, 2})), Error);                                // window > input
  EXPECT_THROW(avg_pool(x, params({2, 2}, {}, {}, false, false, {2, 2})), Error);  // dilation
  EXPECT_THROW(max_pool(rand_input({3, 8}, 1), params({2})), Error);  // no spatial dims
  EXPECT_THROW(max_pool(x.detach().to(DType::i64), params({2, 2})), Error);
  EXPECT_THROW(adaptive_avg_pool(x, {2}), Error);
  EXPECT_THROW(adaptive_max_pool(x, {0, 2}), Error);
  EXPECT_THROW(global_avg_pool(Tensor()), Error);
}

// Channels-last input (conv_layout.h) outside autograd: the output stays channels-last (oneDNN's
// NHWC kernel, no reorder) with the same values as the reference; with gradients wanted the usual
// contiguous path runs, and its values and gradients are those of the plain input.
TEST(Pool, ChannelsLastKeepsLayoutAndValues) {
  const std::vector<std::pair<Shape, PoolParams>> cases = {
      {{2, 16, 13, 11}, params({3, 3}, {2, 2}, {1, 1})},            // ResNet's max pool, odd
      {{1, 8, 7, 9}, params({2, 2}, {2, 2}, {0, 0}, true, false)},  // vd shortcut: ceil mode
      {{1, 8, 7, 9}, params({3, 3}, {2, 2}, {1, 1}, true, true)},   // divisor correction
      {{3, 5, 6, 6}, params({6, 6})},                               // whole map
  };
  for (const auto& [shape, p] : cases) {
    SCOPED_TRACE(shape_str(shape));
    const Tensor x = rand_input(shape, 17).detach();
    const Tensor xc = to_channels_last(x);
    ASSERT_TRUE(is_channels_last(xc));
    NoGradGuard ng;
    const Tensor mx = max_pool(xc, p), av = avg_pool(xc, p);
    EXPECT_TRUE(is_channels_last(mx));
    expect_close(mx, ref_pool(x, p, true));
    expect_close(av, ref_pool(x, p, false));
    const Tensor g = global_avg_pool(xc);
    EXPECT_TRUE(is_channels_last(g));
    expect_close(g, ref_adaptive(x, {1, 1}, false));
  }
}

TEST(Pool, ChannelsLastGradientsMatchPlain) {
  const PoolParams p = params({3, 3}, {2, 2}, {1, 1});
  const Tensor base = distinct_input({1, 4, 7, 5}, 19);
  auto grad_of = [&](bool channels_last, bool is_max) {
    Tensor x = base.detach().set_requires_grad();
    const Tensor in = channels_last ? to_channels_last(x) : x;
    const Tensor y = is_max ? max_pool(in, p) : avg_pool(in, p);
    sum(y * y).backward();
    return std::make_pair(y.detach(), x.grad());
  };
  for (bool is_max : {true, false}) {
    const auto [y_cl, g_cl] = grad_of(true, is_max);
    const auto [y, g] = grad_of(false, is_max);
    expect_close(y_cl, y);
    expect_close(g_cl, g);
  }
  EXPECT_GRADCHECK(
      [p](const std::vector<Tensor>& in) { return max_pool(to_channels_last(in[0]), p); },
      std::vector<Tensor>{base});
}
