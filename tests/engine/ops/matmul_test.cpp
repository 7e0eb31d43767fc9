#include "engine/ops/matmul.h"

#include <gtest/gtest.h>

#include <cmath>

#include "engine/core/error.h"
#include "engine/ops/binary.h"
#include "engine/ops/reduce.h"
#include "tests/support/gradcheck.h"

using namespace oar;
using oar::testing::rand_input;

namespace {

// Naive numpy-semantics matmul on contiguous copies, in double.
Tensor ref_matmul(const Tensor& a_in, const Tensor& b_in) {
  Tensor a = a_in.detach().to(DType::f32), b = b_in.detach().to(DType::f32);
  const bool va = a.dim() == 1, vb = b.dim() == 1;
  if (va) a = a.unsqueeze(0);
  if (vb) b = b.unsqueeze(1);
  Shape ba(a.shape().begin(), a.shape().end() - 2), bb(b.shape().begin(), b.shape().end() - 2);
  Shape batch = broadcast_shapes(ba, bb, "ref");
  const int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
  Shape ea = batch, eb = batch, eo = batch;
  ea.insert(ea.end(), {m, k});
  eb.insert(eb.end(), {k, n});
  eo.insert(eo.end(), {m, n});
  auto va_ = a.expand(ea).contiguous().to_vector<float>();
  auto vb_ = b.expand(eb).contiguous().to_vector<float>();
  const int64_t nb = shape_numel(batch);
  std::vector<float> out(nb * m * n);
  for (int64_t z = 0; z < nb; ++z)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double acc = 0;
        for (int64_t l = 0; l < k; ++l)
          acc += double(va_[z * m * k + i * k + l]) * vb_[z * k * n + l * n + j];
        out[z * m * n + i * n + j] = static_cast<float>(acc);
      }
  Shape s = batch;
  if (!va) s.push_back(m);
  if (!vb) s.push_back(n);
  return tensor<float>(out, s);
}

void expect_close(const Tensor& got, const Tensor& want, double tol) {
  ASSERT_EQ(got.shape(), want.shape());
  auto g = got.to(DType::f32).contiguous().to_vector<float>();
  auto w = want.to(DType::f32).contiguous().to_vector<float>();
  for (size_t i = 0; i < g.size(); ++i)
    ASSERT_NEAR(g[i], w[i], tol * (1 + std::fabs(w[i]))) << "element " << i;
}

Tensor rnd(const Shape& s, uint64_t seed) { return rand_input(s, seed).detach(); }

}  // namespace

TEST(Matmul, ShapesAndBroadcastMatchReference) {
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{3, 5}, {5, 7}},       {{1, 1}, {1, 1}},          {{5}, {5}},
      {{5}, {5, 4}},          {{3, 5}, {5}},             {{2, 3, 5}, {5, 4}},
      {{4, 5}, {2, 5, 3}},    {{2, 1, 3, 5}, {4, 5, 2}}, {{7}, {3, 7, 2}},
      {{2, 3, 4, 7}, {7}},    {{1, 17}, {17, 1}},        {{33, 65}, {65, 31}}};
  uint64_t seed = 1;
  for (const auto& [sa, sb] : cases) {
    Tensor a = rnd(sa, seed++), b = rnd(sb, seed++);
    expect_close(matmul(a, b), ref_matmul(a, b), 1e-5);
  }
}

TEST(Matmul, StridedOperandsAreReadInPlace) {
  Tensor a = rnd({6, 5}, 1), b = rnd({4, 6}, 2);
  expect_close(matmul(a.t(), b.t()), ref_matmul(a.t(), b.t()), 1e-5);
  // Column slices (row stride > cols), a permuted batch and an expanded batch.
  Tensor big = rnd({5, 9}, 3);
  Tensor s = big.slice(1, 1, 8, 2);  // [5, 4], strides [9, 2]: copied
  expect_close(matmul(s, rnd({4, 3}, 4)), ref_matmul(s, rnd({4, 3}, 4)), 1e-5);
  Tensor n = big.narrow(1, 2, 4);  // [5, 4], strides [9, 1]
  expect_close(matmul(n, rnd({4, 3}, 4)), ref_matmul(n, rnd({4, 3}, 4)), 1e-5);
  Tensor p = rnd({3, 2, 4}, 5).permute({1, 0, 2});  // [2, 3, 4]
  Tensor q = rnd({4, 5}, 6).unsqueeze(0).expand({2, 4, 5});
  expect_close(matmul(p, q), ref_matmul(p, q), 1e-5);
  expect_close(bmm(p, q), ref_matmul(p, q), 1e-5);
}

TEST(Matmul, Bf16WithinTolerance) {
  Tensor a = rnd({2, 19, 40}, 1), b = rnd({40, 13}, 2);
  Tensor got = matmul(a.to(DType::bf16), b.to(DType::bf16));
  EXPECT_EQ(got.dtype(), DType::bf16);
  // bf16 inputs carry ~3 significant digits; K = 40 terms of |x| < 1.
  expect_close(got, ref_matmul(a, b), 3e-2);
  Tensor w = rnd({13, 40}, 3), bias = rnd({13}, 4);
  Tensor l = linear(a.to(DType::bf16), w.to(DType::bf16), bias.to(DType::bf16));
  EXPECT_EQ(l.dtype(), DType::bf16);
  expect_close(l, add(ref_matmul(a, w.t()), bias), 3e-2);
}

TEST(Matmul, LinearAndGemm) {
  Tensor x = rnd({2, 3, 6}, 1), w = rnd({4, 6}, 2), b = rnd({4}, 3);
  expect_close(linear(x, w, b), add(ref_matmul(x, w.t()), b), 1e-5);
  expect_close(linear(x, w), ref_matmul(x, w.t()), 1e-5);
  expect_close(linear(rnd({6}, 4), w, b), add(ref_matmul(rnd({6}, 4), w.t()), b), 1e-5);
  Tensor a = rnd({5, 3}, 5), bb = rnd({4, 5}, 6), c = rnd({4}, 7);
  // op(a) = a^T [3, 5], op(b) = b^T [5, 4]
  expect_close(gemm(a, bb, c, 1.0, 1.0, true, true), add(ref_matmul(a.t(), bb.t()), c), 1e-5);
  expect_close(gemm(a, bb, c, 0.5, 2.0, true, true),
               add(mul(ref_matmul(a.t(), bb.t()), 0.5), mul(c, 2.0)), 1e-5);
  Tensor c2 = rnd({3, 1}, 8);
  expect_close(gemm(a.t(), bb.t(), c2), add(ref_matmul(a.t(), bb.t()), c2), 1e-5);
  expect_close(gemm(a.t(), bb.t()), ref_matmul(a.t(), bb.t()), 1e-5);
}

TEST(Matmul, EmptyInnerDimGivesZerosOrBias) {
  Tensor a = zeros({3, 0}), b = zeros({0, 2});
  EXPECT_EQ(matmul(a, b).to_vector<float>(), std::vector<float>(6, 0.f));
  Tensor bias = tensor<float>({1.f, 2.f});
  EXPECT_EQ(linear(zeros({3, 0}), zeros({2, 0}), bias).to_vector<float>(),
            (std::vector<float>{1, 2, 1, 2, 1, 2}));
  EXPECT_EQ(matmul(zeros({0, 4}), zeros({4, 2})).shape(), (Shape{0, 2}));
}

TEST(Matmul, Gradients) {
  using V = std::vector<Tensor>;
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{3, 4}, {4, 5}}, {{4}, {4}}, {{4}, {2, 4, 3}}, {{2, 3, 4}, {4}},
      {{2, 1, 3, 4}, {3, 4, 2}}, {{2, 3, 4}, {4, 2}}, {{3, 4}, {2, 4, 2}}};
  uint64_t seed = 10;
  for (const auto& [sa, sb] : cases) {
    EXPECT_GRADCHECK([](const V& in) { return matmul(in[0], in[1]); },
                     (V{rand_input(sa, seed++), rand_input(sb, seed++)}));
  }
  // Transposed (non-contiguous) leaves.
  Tensor at = rand_input({4, 3}, 20), bt = rand_input({5, 4}, 21);
  EXPECT_GRADCHECK([](const V& in) { return matmul(in[0].t(), in[1].t()); }, (V{at, bt}));
  EXPECT_GRADCHECK([](const V& in) { return bmm(in[0], in[1]); },
                   (V{rand_input({2, 3, 4}, 22), rand_input({2, 4, 5}, 23)}));
  EXPECT_GRADCHECK([](const V& in) { return linear(in[0], in[1], in[2]); },
                   (V{rand_input({2, 3, 4}, 24), rand_input({5, 4}, 25), rand_input({5}, 26)}));
  EXPECT_GRADCHECK([](const V& in) { return gemm(in[0], in[1], in[2], 1.0, 1.0, true, false); },
                   (V{rand_input({4, 3}, 27), rand_input({4, 2}, 28), rand_input({2}, 29)}));
  EXPECT_GRADCHECK([](const V& in) { return gemm(in[0], in[1], in[2], 0.5, -2.0, false, true); },
                   (V{rand_input({3, 4}, 30), rand_input({2, 4}, 31), rand_input({3, 2}, 32)}));
}

TEST(Matmul, BadInputsThrow) {
  EXPECT_THROW(matmul(zeros({2, 3}), zeros({4, 2})), Error);
  EXPECT_THROW(matmul(zeros({2, 2, 3}), zeros({3, 3, 2})), Error);
  EXPECT_THROW(matmul(zeros({2, 3}), zeros({3, 2}, DType::bf16)), Error);
  EXPECT_THROW(matmul(zeros({2, 3}, DType::i64), zeros({3, 2}, DType::i64)), Error);
  EXPECT_THROW(matmul(zeros({}), zeros({3})), Error);
  EXPECT_THROW(bmm(zeros({2, 3, 4}), zeros({3, 4, 2})), Error);
  EXPECT_THROW(linear(zeros({2, 3}), zeros({4, 2})), Error);
  EXPECT_THROW(linear(zeros({2, 3}), zeros({4, 3}), zeros({3})), Error);
  EXPECT_THROW(gemm(zeros({2, 3}), zeros({2, 3})), Error);
  EXPECT_THROW(gemm(zeros({2, 3}), zeros({3, 4}), zeros({3, 4})), Error);
}
