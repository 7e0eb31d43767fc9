#include "engine/ops/norm.h"

#include <gtest/gtest.h>

#include <cmath>

#include "engine/autograd/grad_mode.h"
#include "engine/autograd/node.h"
#include "engine/core/error.h"
#include "tests/support/gradcheck.h"

using namespace oar;
using oar::testing::rand_input;

namespace {

void expect_close(const Tensor& got, const std::vector<double>& want, double tol = 1e-4) {
  const auto a = got.to_vector<float>();
  ASSERT_EQ(a.size(), want.size());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], want[i], tol) << "element " << i;
}

struct Stats {
  std::vector<double> mean, var;  // biased variance
};

// Per-channel statistics of x [N, C, *].
Stats channel_stats(const Tensor& x) {
  const auto v = x.contiguous().to_vector<float>();
  const int64_t n = x.size(0), c = x.size(1), inner = x.numel() / (n * c);
  Stats s{std::vector<double>(c, 0), std::vector<double>(c, 0)};
  for (int64_t ch = 0; ch < c; ++ch) {
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < inner; ++j) s.mean[ch] += v[(i * c + ch) * inner + j];
    s.mean[ch] /= double(n * inner);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < inner; ++j) {
        const double d = v[(i * c + ch) * inner + j] - s.mean[ch];
        s.var[ch] += d * d;
      }
    s.var[ch] /= double(n * inner);
  }
  return s;
}

std::vector<double> ref_batch_norm(const Tensor& x, const std::vector<double>& mean,
                                   const std::vector<double>& var, const Tensor& w, const Tensor& b,
                                   double eps) {
  const auto v = x.contiguous().to_vector<float>();
  const auto wv = w.defined() ? w.to_vector<float>() : std::vector<float>();
  const auto bv = b.defined() ? b.to_vector<float>() : std::vector<float>();
  const int64_t c = x.size(1), inner = x.numel() / (x.size(0) * c);
  std::vector<double> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const int64_t ch = (int64_t(i) / inner) % c;
    out[i] = (v[i] - mean[ch]) / std::sqrt(var[ch] + eps) * (w.defined() ? wv[ch] : 1.0) +
             (b.defined() ? bv[ch] : 0.0);
  }
  return out;
}

// Normalises consecutive chunks of `group` elements; scale/shift repeat with period `period`
// after dividing the index by `div` (layer norm: div 1, period K; group norm: div HW, period C).
std::vector<double> ref_chunk_norm(const Tensor& x, int64_t group, const Tensor& w, const Tensor& b,
                                   int64_t div, int64_t period, double eps) {
  const auto v = x.contiguous().to_vector<float>();
  const auto wv = w.defined() ? w.contiguous().to_vector<float>() : std::vector<float>();
  const auto bv = b.defined() ? b.contiguous().to_vector<float>() : std::vector<float>();
  std::vector<double> out(v.size());
  for (size_t g0 = 0; g0 < v.size(); g0 += size_t(group)) {
    double m = 0, s = 0;
    for (int64_t i = 0; i < group; ++i) m += v[g0 + i];
    m /= double(group);
    for (int64_t i = 0; i < group; ++i) s += (v[g0 + i] - m) * (v[g0 + i] - m);
    const double r = 1.0 / std::sqrt(s / double(group) + eps);
    for (int64_t i = 0; i < group; ++i) {
      const size_t p = ((g0 + i) / size_t(div)) % size_t(period);
      out[g0 + i] = (v[g0 + i] - m) * r * (w.defined() ? wv[p] : 1.0) + (b.defined() ? bv[p] : 0.0);
    }
  }
  return out;
}

}  // namespace

TEST(BatchNorm, TrainingOutputAndRunningStats) {
  for (const Shape& shape : {Shape{6, 4}, Shape{3, 4, 5}, Shape{3, 4, 5, 2}, Shape{2, 4, 3, 2, 3},
                             Shape{2, 4, 2, 3, 2, 2}}) {
    SCOPED_TRACE(shape_str(shape));
    Tensor x = rand_input(shape, 1, -2.0, 3.0).detach();
    Tensor w = rand_input({4}, 2, 0.5, 1.5).detach(), b = rand_input({4}, 3).detach();
    Tensor rm = tensor<float>({0.5f, -0.5f, 1.0f, 0.0f}),
           rv = tensor<float>({1.0f, 2.0f, 0.5f, 1.5f});
    Tensor y = batch_norm(x, rm, rv, w, b, true, 0.2, 1e-5);
    EXPECT_EQ(y.shape(), shape);
    const Stats s = channel_stats(x);
    expect_close(y, ref_batch_norm(x, s.mean, s.var, w, b, 1e-5));
    const double n = double(x.numel() / 4);
    const std::vector<double> rm0{0.5, -0.5, 1.0, 0.0}, rv0{1.0, 2.0, 0.5, 1.5};
    std::vector<double> want_m, want_v;
    for (int c = 0; c < 4; ++c) {
      want_m.push_back(0.8 * rm0[c] + 0.2 * s.mean[c]);
      want_v.push_back(0.8 * rv0[c] + 0.2 * s.var[c] * n / (n - 1));
    }
    expect_close(rm, want_m, 1e-5);
    expect_close(rv, want_v, 1e-5);
  }
}

TEST(BatchNorm, InferenceUsesRunningStats) {
  Tensor x = rand_input({3, 4, 5}, 4).detach();
  Tensor rm = tensor<float>({0.5f, -0.5f, 1.0f, 0.0f}),
         rv = tensor<float>({1.0f, 2.0f, 0.5f, 1.5f});
  Tensor w = rand_input({4}, 2, 0.5, 1.5).detach();
  Tensor y = batch_norm(x, rm, rv, w, Tensor(), false);
  expect_close(y,
               ref_batch_norm(x, {0.5, -0.5, 1.0, 0.0}, {1.0, 2.0, 0.5, 1.5}, w, Tensor(), 1e-5));
  expect_close(rm, {0.5, -0.5, 1.0, 0.0}, 0);  // untouched
  // Without running statistics, evaluation normalises by the batch.
  const Stats s = channel_stats(x);
  expect_close(batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), false),
               ref_batch_norm(x, s.mean, s.var, Tensor(), Tensor(), 1e-5));
}

TEST(BatchNorm, Gradients) {
  for (bool training : {true, false}) {
    SCOPED_TRACE(training ? "training" : "inference");
    Tensor x = rand_input({3, 2, 4, 3}, 5, -2.0, 2.0);
    Tensor w = rand_input({2}, 6, 0.5, 1.5), b = rand_input({2}, 7);
    Tensor rm = tensor<float>({0.1f, -0.2f}), rv = tensor<float>({0.8f, 1.3f});
    EXPECT_GRADCHECK(
        [&](const std::vector<Tensor>& in) {
          return batch_norm(in[0], rm, rv, in[1], in[2], training, 0.0);
        },
        (std::vector<Tensor>{x, w, b}));
    // No affine parameters; 2-D and 3-D inputs.
    EXPECT_GRADCHECK(
        [&](const std::vector<Tensor>& in) {
          return batch_norm(in[0], Tensor(), Tensor(), Tensor(), Tensor(), training);
        },
        (std::vector<Tensor>{rand_input({5, 3}, 8)}));
    EXPECT_GRADCHECK(
        [&](const std::vector<Tensor>& in) {
          return batch_norm(in[0], rm, rv, in[1], Tensor(), training, 0.0);
        },
        (std::vector<Tensor>{rand_input({2, 2, 5}, 9), rand_input({2}, 10, 0.5, 1.5)}));
  }
}

TEST(BatchNorm, NonContiguousInput) {
  Tensor base = rand_input({4, 3, 5}, 11);
  Tensor x = base.transpose(1, 2);  // [4, 5, 3]: channels 5, strided
  const Stats s = channel_stats(x.detach().contiguous());
  expect_close(batch_norm(x.detach(), Tensor(), Tensor(), Tensor(), Tensor(), true),
               ref_batch_norm(x.detach(), s.mean, s.var, Tensor(), Tensor(), 1e-5));
  EXPECT_GRADCHECK(
      [](const std::vector<Tensor>& in) {
        return batch_norm(in[0].transpose(1, 2), Tensor(), Tensor(), Tensor(), Tensor(), true);
      },
      std::vector<Tensor>{base});
}

TEST(BatchNorm, BadInputsThrow) {
  Tensor x = rand_input({3, 4, 5}, 1);
  EXPECT_THROW(batch_norm(rand_input({4}, 1), Tensor(), Tensor(), Tensor(), Tensor(), true), Error);
  EXPECT_THROW(batch_norm(x, Tensor(), Tensor(), ones({3}), Tensor(), true), Error);
  EXPECT_THROW(batch_norm(x, zeros({4}), Tensor(), Tensor(), Tensor(), true), Error);
  EXPECT_THROW(batch_norm(x, zeros({5}), ones({5}), Tensor(), Tensor(), true), Error);
  EXPECT_THROW(batch_norm(rand_input({1, 4}, 1), Tensor(), Tensor(), Tensor(), Tensor(), true),
               Error);
  EXPECT_THROW(batch_norm(x.detach().to(DType::i64), Tensor(), Tensor(), Tensor(), Tensor(), true),
               Error);
}

TEST(LayerNorm, MatchesReference) {
  Tensor x = rand_input({3, 5, 7}, 12, -2.0, 3.0).detach();
  Tensor w = rand_input({7}, 13).detach(), b = rand_input({7}, 14).detach();
  expect_close(layer_norm(x, 1, w, b), ref_chunk_norm(x, 7, w, b, 1, 7, 1e-5));
  expect_close(layer_norm(x, 1, Tensor(), Tensor()),
               ref_chunk_norm(x, 7, Tensor(), Tensor(), 1, 7, 1e-5));
  Tensor w2 = rand_input({5, 7}, 15).detach();
  expect_close(layer_norm(x, 2, w2, Tensor(), 1e-3),
               ref_chunk_norm(x, 35, w2, Tensor(), 1, 35, 1e-3));
  expect_close(layer_norm(x, 3, Tensor(), Tensor()),
               ref_chunk_norm(x, 105, Tensor(), Tensor(), 1, 105, 1e-5));
  Tensor xt = x.transpose(0, 2);  // [7, 5, 3], non-contiguous
  expect_close(layer_norm(xt, 1, Tensor(), Tensor()),
               ref_chunk_norm(xt.contiguous(), 3, Tensor(), Tensor(), 1, 3, 1e-5));
}

TEST(LayerNorm, Gradients) {
  Tensor x = rand_input({2, 3, 5}, 16), w = rand_input({5}, 17, 0.5, 1.5), b = rand_input({5}, 18);
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return layer_norm(in[0], 1, in[1], in[2]); },
                   (std::vector<Tensor>{x, w, b}));
  EXPECT_GRADCHECK(
      [](const std::vector<Tensor>& in) { return layer_norm(in[0], 1, Tensor(), Tensor()); },
      (std::vector<Tensor>{x}));
  Tensor w2 = rand_input({3, 5}, 19, 0.5, 1.5);
  EXPECT_GRADCHECK(
      [](const std::vector<Tensor>& in) {
        return layer_norm(in[0].transpose(0, 1), 2, in[1], Tensor());
      },
      (std::vector<Tensor>{rand_input({3, 2, 5}, 20), w2}));
  // Only the bias requires grad.
  Tensor xd = x.detach();
  EXPECT_GRADCHECK(
      [xd](const std::vector<Tensor>& in) { return layer_norm(xd, 1, Tensor(), in[0]); },
      (std::vector<Tensor>{rand_input({5}, 21)}));
}

TEST(LayerNorm, BadInputsThrow) {
  Tensor x = rand_input({3, 5}, 1);
  EXPECT_THROW(layer_norm(x, 0, Tensor(), Tensor()), Error);
  EXPECT_THROW(layer_norm(x, 3, Tensor(), Tensor()), Error);
  EXPECT_THROW(layer_norm(x, 1, ones({3}), Tensor()), Error);
  EXPECT_THROW(layer_norm(x, 2, Tensor(), ones({5})), Error);
  EXPECT_THROW(layer_norm(x.detach().to(DType::bf16), 1, Tensor(), Tensor()), Error);
}

TEST(GroupNorm, MatchesReference) {
  Tensor x = rand_input({3, 6, 4, 5}, 22, -2.0, 3.0).detach();
  Tensor w = rand_input({6}, 23).detach(), b = rand_input({6}, 24).detach();
  for (int64_t g : {1, 2, 3, 6}) {
    SCOPED_TRACE(g);
    expect_close(group_norm(x, g, w, b), ref_chunk_norm(x, 6 / g * 20, w, b, 20, 6, 1e-5));
  }
  expect_close(group_norm(x, 3, Tensor(), Tensor()),
               ref_chunk_norm(x, 40, Tensor(), Tensor(), 20, 6, 1e-5));
  Tensor x2 = rand_input({4, 6}, 25).detach();  // no spatial dims
  expect_close(group_norm(x2, 2, w, Tensor()), ref_chunk_norm(x2, 3, w, Tensor(), 1, 6, 1e-5));
}

TEST(GroupNorm, Gradients) {
  Tensor x = rand_input({2, 6, 3, 2}, 26), w = rand_input({6}, 27, 0.5, 1.5),
         b = rand_input({6}, 28);
  for (int64_t g : {1, 3, 6}) {
    EXPECT_GRADCHECK(
        [g](const std::vector<Tensor>& in) { return group_norm(in[0], g, in[1], in[2]); },
        (std::vector<Tensor>{x, w, b}));
  }
  EXPECT_GRADCHECK(
      [](const std::vector<Tensor>& in) {
        return group_norm(in[0].transpose(1, 2), 2, Tensor(), Tensor());
      },
      (std::vector<Tensor>{rand_input({2, 5, 4}, 29)}));
}

TEST(GroupNorm, LargeInputThreaded) {
  // Big enough to split across threads; compares against the reference.
  Tensor x = rand_input({4, 32, 24, 24}, 30).detach();
  expect_close(group_norm(x, 8, Tensor(), Tensor()),
               ref_chunk_norm(x, 4 * 576, Tensor(), Tensor(), 576, 32, 1e-5), 1e-4);
}

TEST(LayerNorm, WideRowsMatchDoubleReference) {
  // Rows long enough for the vector loops (with tails: 531 = 66 * 8 + 3) and enough of them to
  // split across threads; forward and all three gradients against a reference in double.
  const int64_t m = 70, k = 531;
  Tensor x = rand_input({m, k}, 40, -2.0, 3.0), w = rand_input({k}, 41, 0.5, 1.5),
         b = rand_input({k}, 42);
  Tensor gy = rand_input({m, k}, 43).detach();
  Tensor y = layer_norm(x, 1, w, b);
  auto grads = autograd::grad({y}, {x, w, b}, {gy});
  const auto xv = x.detach().to_vector<float>(), wv = w.detach().to_vector<float>(),
             bv = b.detach().to_vector<float>(), gv = gy.to_vector<float>();
  std::vector<double> ry(m * k), rdx(m * k), rdw(k, 0.0), rdb(k, 0.0);
  for (int64_t r = 0; r < m; ++r) {
    double mu = 0, var = 0;
    for (int64_t j = 0; j < k; ++j) mu += xv[r * k + j];
    mu /= k;
    for (int64_t j = 0; j < k; ++j) var += (xv[r * k + j] - mu) * (xv[r * k + j] - mu);
    const double rstd = 1.0 / std::sqrt(var / k + 1e-5);
    double mg = 0, mgx = 0;
    for (int64_t j = 0; j < k; ++j) {
      const double xh = (xv[r * k + j] - mu) * rstd, g = double(gv[r * k + j]) * wv[j];
      ry[r * k + j] = xh * wv[j] + bv[j];
      mg += g / k;
      mgx += g * xh / k;
      rdw[j] += double(gv[r * k + j]) * xh;
      rdb[j] += gv[r * k + j];
    }
    for (int64_t j = 0; j < k; ++j) {
      const double xh = (xv[r * k + j] - mu) * rstd, g = double(gv[r * k + j]) * wv[j];
      rdx[r * k + j] = rstd * (g - mg - xh * mgx);
    }
  }
  expect_close(y, ry);
  expect_close(grads[0], rdx, 1e-3);
  expect_close(grads[1], rdw, 1e-3);
  expect_close(grads[2], rdb, 1e-3);
}

TEST(GroupNorm, BadInputsThrow) {
  Tensor x = rand_input({3, 6, 4}, 1);
  EXPECT_THROW(group_norm(x, 4, Tensor(), Tensor()), Error);
  EXPECT_THROW(group_norm(x, 0, Tensor(), Tensor()), Error);
  EXPECT_THROW(group_norm(x, 2, ones({4}), Tensor()), Error);
  EXPECT_THROW(group_norm(rand_input({6}, 1), 2, Tensor(), Tensor()), Error);
}

TEST(GroupNorm, LargeBackwardMatchesLayerNorm) {
  // Without affine parameters, group norm is layer norm over each group's flattened elements;
  // this checks the threaded backward on a size too large for finite differences.
  Tensor x = rand_input({4, 32, 12, 12}, 31);
  Tensor gy = rand_input({4, 32, 12, 12}, 32).detach();
  auto g1 = autograd::grad({group_norm(x, 8, Tensor(), Tensor())}, {x}, {gy});
  auto g2 = autograd::grad({layer_norm(x.view({4, 8, 4 * 144}), 1, Tensor(), Tensor())}, {x},
                           {gy.view({4, 8, 4 * 144})});
  const auto a = g1[0].to_vector<float>(), b = g2[0].to_vector<float>();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-4) << "element " << i;
}
