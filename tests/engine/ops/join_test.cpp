#include "engine/ops/join.h"

#include <gtest/gtest.h>

#include "engine/core/error.h"
#include "engine/ops/binary.h"
#include "engine/ops/reduce.h"
#include "tests/support/gradcheck.h"

using namespace oar;
using oar::testing::rand_input;

namespace {
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(Concat, JoinsAlongAnyDim) {
  Tensor a = arange(0.0, 6.0, 1.0, DType::f32).reshape({2, 3});
  Tensor b = arange(10.0, 12.0, 1.0, DType::f32).reshape({2, 1});
  Tensor c = concat({a, b}, -1);
  EXPECT_EQ(c.shape(), (Shape{2, 4}));
  EXPECT_EQ(c.to_vector<float>(), (std::vector<float>{0, 1, 2, 10, 3, 4, 5, 11}));
  Tensor d = concat({a, a.slice(0, 1, 2)}, 0);
  EXPECT_EQ(d.to_vector<float>(), (std::vector<float>{0, 1, 2, 3, 4, 5, 3, 4, 5}));
  // non-contiguous input, integer dtype, bool dtype, an empty piece
  Tensor i = tensor<int64_t>({1, 2, 3, 4}, {2, 2});
  Tensor ci = concat({i.t(), i, zeros({0, 2}, DType::i64)}, 0);
  EXPECT_EQ(ci.to_vector<int64_t>(), (std::vector<int64_t>{1, 3, 2, 4, 1, 2, 3, 4}));
  Tensor cb = concat({tensor<bool>({true}), tensor<bool>({false, true})}, 0);
  EXPECT_EQ(cb.to_vector<bool>(), (std::vector<bool>{true, false, true}));
  // promotes mixed dtypes
  EXPECT_EQ(concat({i, a.slice(1, 0, 2)}, 0).dtype(), DType::f32);
}

TEST(Concat, LargeThreaded) {
  Tensor a = arange(0.0, 300000.0, 1.0, DType::f32).reshape({3, 100000});
  Tensor b = full({3, 5}, -1.0);
  Tensor c = concat({a, b}, 1);
  EXPECT_FLOAT_EQ(c.select(0, 2).select(0, 99999).item<float>(), 299999.f);
  EXPECT_FLOAT_EQ(c.select(0, 1).select(0, 100004).item<float>(), -1.f);
  Tensor d = concat({a, a}, 0);
  EXPECT_FLOAT_EQ(sum(d).item<double>(), 2.0 * 299999.0 * 300000.0 / 2.0);
}

TEST(Concat, GradientSlices) {
  EXPECT_GRADCHECK(
      [](const std::vector<Tensor>& in) {
        return concat({in[0], in[1].t(), in[0]}, -2);
      },
      (std::vector<Tensor>{rand_input({2, 3}, 1), rand_input({3, 1}, 2)}));
}

TEST(Concat, BadInputsThrow) {
  const std::string msg = error_of([] { concat({zeros({2, 3}), zeros({2, 4})}, 0); });
  EXPECT_NE(msg.find("[2, 4]"), std::string::npos) << msg;
  EXPECT_THROW(concat({}, 0), Error);
  EXPECT_THROW(concat({zeros({2}), zeros({2, 1})}, 0), Error);
  EXPECT_THROW(concat({zeros({2})}, 1), Error);
}

TEST(Stack, NewDimension) {
  Tensor a = tensor<float>({1, 2, 3});
  Tensor b = tensor<float>({4, 5, 6});
  Tensor s0 = stack({a, b}, 0);
  EXPECT_EQ(s0.shape(), (Shape{2, 3}));
  Tensor s1 = stack({a, b}, -1);
  EXPECT_EQ(s1.shape(), (Shape{3, 2}));
  EXPECT_EQ(s1.to_vector<float>(), (std::vector<float>{1, 4, 2, 5, 3, 6}));
  EXPECT_THROW(stack({a, tensor<float>({1, 2})}, 0), Error);
  EXPECT_THROW(stack({a, b}, 2), Error);
  EXPECT_GRADCHECK(
      [](const std::vector<Tensor>& in) {
        return stack({in[0], in[1].permute({1, 0})}, 1);
      },
      (std::vector<Tensor>{rand_input({2, 3}, 3), rand_input({3, 2}, 4)}));
}

TEST(Split, ViewsAndAccumulatedGradient) {
  Tensor x = arange(0.0, 10.0, 1.0, DType::f32).reshape({2, 5});
  auto parts = split(x, {2, 0, 3}, 1);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_TRUE(parts[0].same_storage(x));
  EXPECT_EQ(parts[1].shape(), (Shape{2, 0}));
  EXPECT_EQ(parts[2].to_vector<float>(), (std::vector<float>{2, 3, 4, 7, 8, 9}));
  EXPECT_THROW(split(x, {2, 2}, 1), Error);
  EXPECT_THROW(split(x, {6, -1}, 1), Error);

  Tensor w = rand_input({3, 4}, 5);
  auto ps = split(w, {1, 3}, -1);
  (sum(ps[0] * 2.0) + sum(ps[1] * 3.0)).backward();
  EXPECT_EQ(w.grad().to_vector<float>(), (std::vector<float>{2, 3, 3, 3, 2, 3, 3, 3, 2, 3, 3, 3}));
  EXPECT_GRADCHECK(
      [](const std::vector<Tensor>& in) {
        auto p = split(in[0].t(), {1, 2}, 0);
        return concat({p[1] * p[1], p[0]}, 0);
      },
      (std::vector<Tensor>{rand_input({4, 3}, 6)}));
}

TEST(Chunk, NearlyEqualPieces) {
  Tensor x = arange(0.0, 7.0, 1.0, DType::f32);
  auto c = chunk(x, 3, 0);
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0].numel(), 3);
  EXPECT_EQ(c[2].to_vector<float>(), (std::vector<float>{6}));
  EXPECT_EQ(chunk(arange(0.0, 6.0, 1.0, DType::f32), 4, 0).size(), 3u);  // as torch.chunk
  EXPECT_THROW(chunk(x, 0, 0), Error);
}

TEST(Pad, ConstantWithCrop) {
  Tensor x = arange(1.0, 7.0, 1.0, DType::f32).reshape({2, 3});
  Tensor y =
      pad(x, {1, 0, -1, 2}, "constant", 9.0);  // dim 0: one row before; dim 1: crop one, add two
  EXPECT_EQ(y.shape(), (Shape{3, 4}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{9, 9, 9, 9, 2, 3, 9, 9, 5, 6, 9, 9}));
  Tensor i = pad(tensor<int64_t>({1, 2}), {2, -1}, "constant", 7);
  EXPECT_EQ(i.to_vector<int64_t>(), (std::vector<int64_t>{7, 7, 1}));
  EXPECT_GRADCHECK(
      [](const std::vector<Tensor>& in) {
        return pad(in[0].t(), {0, 2, -1, 1, 1, -2}, "constant", 0.5);
      },
      (std::vector<Tensor>{rand_input({4, 3, 2}, 7)}));
}

TEST(Pad, ReflectAndEdge) {
  Tensor x = tensor<float>({1, 2, 3, 4});
  EXPECT_EQ(pad(x, {2, 3}, "reflect").to_vector<float>(),
            (std::vector<float>{3, 2, 1, 2, 3, 4, 3, 2, 1}));
  EXPECT_EQ(pad(x, {2, -1}, "edge").to_vector<float>(), (std::vector<float>{1, 1, 1, 2, 3}));
  EXPECT_EQ(pad(x, {-2, 2}, "reflect").to_vector<float>(), (std::vector<float>{3, 4, 3, 2}));
  Tensor m = tensor<float>({1, 2, 3, 4}, {2, 2});
  EXPECT_EQ(pad(m, {1, 1, 0, 1}, "edge").to_vector<float>(),
            (std::vector<float>{1, 2, 2, 1, 2, 2, 3, 4, 4, 3, 4, 4}));
  // bf16 keeps its dtype
  Tensor h = pad(x.to(DType::bf16), {1, 1}, "reflect");
  EXPECT_EQ(h.dtype(), DType::bf16);
  EXPECT_EQ(h.to(DType::f32).to_vector<float>(), (std::vector<float>{2, 1, 2, 3, 4, 3}));
}

TEST(Pad, ReflectEdgeGradientsAccumulate) {
  Tensor x = tensor<float>({1, 2, 3, 4}).set_requires_grad();
  sum(pad(x, {2, 3}, "reflect")).backward();
  // output 3 2 1 2 3 4 3 2 1: counts 2, 3, 3, 1
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{2, 3, 3, 1}));
  Tensor e = tensor<float>({1, 2, 3}).set_requires_grad();
  sum(pad(e, {2, 1}, "edge")).backward();
  EXPECT_EQ(e.grad().to_vector<float>(), (std::vector<float>{3, 1, 2}));
  for (const char* mode : {"reflect", "edge"}) {
    EXPECT_GRADCHECK(
        [mode](const std::vector<Tensor>& in) {
          return pad(in[0].permute({2, 0, 1}), {1, -1, 2, 1, 0, 2}, mode);
        },
        (std::vector<Tensor>{rand_input({3, 4, 3}, 8)}));
  }
}

TEST(Pad, BadInputsThrow) {
  Tensor x = zeros({2, 3});
  EXPECT_THROW(pad(x, {1, 1}), Error);                   // rank 2 needs 4 pads
  EXPECT_THROW(pad(x, {0, 0, 3, 0}, "reflect"), Error);  // pad >= size
  EXPECT_THROW(pad(x, {0, 0, -2, -2}), Error);           // crops more than the size
  const std::string msg = error_of([&] { pad(x, {0, 0, 0, 0}, "wrap"); });
  EXPECT_NE(msg.find("reflect"), std::string::npos) << msg;
}

TEST(Repeat, TilesAndSumsGradients) {
  Tensor x = tensor<float>({1, 2, 3, 4}, {2, 2});
  Tensor y = repeat(x, {2, 1, 3});  // a new leading dim
  EXPECT_EQ(y.shape(), (Shape{2, 2, 6}));
  EXPECT_EQ(y.select(0, 1).to_vector<float>(),
            (std::vector<float>{1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4}));
  Tensor i = repeat(tensor<int64_t>({5, 6}), {2});
  EXPECT_EQ(i.to_vector<int64_t>(), (std::vector<int64_t>{5, 6, 5, 6}));
  Tensor w = tensor<float>({1, 2, 3}).set_requires_grad();
  sum(repeat(w, {4}) * arange(0.0, 12.0, 1.0, DType::f32)).backward();
  EXPECT_EQ(w.grad().to_vector<float>(),
            (std::vector<float>{0 + 3 + 6 + 9, 1 + 4 + 7 + 10, 2 + 5 + 8 + 11}));
  EXPECT_GRADCHECK(
      [](const std::vector<Tensor>& in) {
        return repeat(in[0].t(), {2, 1, 3});
      },
      (std::vector<Tensor>{rand_input({3, 2}, 9)}));
  EXPECT_EQ(repeat(x, {0, 2}).shape(), (Shape{0, 4}));
  EXPECT_THROW(repeat(x, {2}), Error);
  EXPECT_THROW(repeat(x, {-1, 1}), Error);
}

TEST(Pad, LargeMatchesSmallRule) {
  // Threaded rows; every output element obeys the reflect rule of each dimension.
  Tensor x = randn({40, 30, 50});
  Tensor y = pad(x.permute({1, 0, 2}), {2, 3, -1, 4, 5, 0}, "reflect");  // [35, 43, 55]
  ASSERT_EQ(y.shape(), (Shape{35, 43, 55}));
  auto xv = x.to_vector<float>();
  auto yv = y.to_vector<float>();
  auto src = [](int64_t o, int64_t b, int64_t n) {
    const int64_t p = o - b;
    return p < 0 ? -p : (p >= n ? 2 * (n - 1) - p : p);
  };
  for (int64_t i = 0; i < 35; i += 3)
    for (int64_t j = 0; j < 43; j += 5)
      for (int64_t k = 0; k < 55; k += 2) {
        const int64_t a = src(i, 2, 30), b = src(j, -1, 40), c = src(k, 5, 50);
        ASSERT_EQ(yv[(i * 43 + j) * 55 + k], xv[(b * 30 + a) * 50 + c])
            << i << " " << j << " " << k;
      }
}
