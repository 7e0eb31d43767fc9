#include "engine/ops/minmax.h"

#include <gtest/gtest.h>

#include <cmath>

#include "engine/core/error.h"
#include "tests/support/gradcheck.h"

using namespace oar;
using oar::testing::rand_input;
using In = std::vector<Tensor>;

TEST(MinMax, MaxAlongDimTakesFirstOfTies) {
  Tensor x = tensor<float>({1, 5, 5, 2, 7, 0}, {2, 3});
  auto [v, i] = max(x, 1);
  EXPECT_EQ(v.shape(), (Shape{2}));
  EXPECT_EQ(v.to_vector<float>(), (std::vector<float>{5, 7}));
  EXPECT_EQ(i.to_vector<int64_t>(), (std::vector<int64_t>{1, 1}));
  auto [v0, i0] = min(x, 0, true);
  EXPECT_EQ(v0.shape(), (Shape{1, 3}));
  EXPECT_EQ(v0.to_vector<float>(), (std::vector<float>{1, 5, 0}));
  EXPECT_EQ(i0.to_vector<int64_t>(), (std::vector<int64_t>{0, 0, 1}));
}

TEST(MinMax, ArgmaxSelectLastIndexAndIntegers) {
  Tensor x = tensor<int64_t>({3, 9, 9, 1, 1, 0}, {2, 3});
  EXPECT_EQ(argmax(x, -1).to_vector<int64_t>(), (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(argmax(x, -1, false, true).to_vector<int64_t>(), (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(argmin(x, 1, true, true).to_vector<int64_t>(), (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(argmin(x, 1, true).shape(), (Shape{2, 1}));
}

TEST(MinMax, PermutedInputMatchesNaiveLoop) {
  Tensor base = rand_input({4, 3, 5}, 3).detach();
  Tensor x = base.permute({2, 0, 1});  // [5, 4, 3]
  auto [v, i] = max(x, 1);
  auto xv = x.contiguous().to_vector<float>();
  auto vv = v.to_vector<float>();
  auto iv = i.to_vector<int64_t>();
  for (int a = 0; a < 5; ++a)
    for (int c = 0; c < 3; ++c) {
      float best = -1e9f;
      int64_t bi = -1;
      for (int b = 0; b < 4; ++b)
        if (xv[(a * 4 + b) * 3 + c] > best) best = xv[(a * 4 + b) * 3 + c], bi = b;
      EXPECT_EQ(vv[a * 3 + c], best);
      EXPECT_EQ(iv[a * 3 + c], bi);
    }
  Tensor m = amax(x, {0, -1});
  auto mv = m.to_vector<float>();
  for (int b = 0; b < 4; ++b) {
    float best = -1e9f;
    for (int a = 0; a < 5; ++a)
      for (int c = 0; c < 3; ++c) best = std::max(best, xv[(a * 4 + b) * 3 + c]);
    EXPECT_EQ(mv[b], best);
  }
  EXPECT_EQ(amin(x).dim(), 0);
  EXPECT_EQ(amin(x, {1}, true).shape(), (Shape{5, 1, 3}));
}

TEST(MinMax, NanPropagates) {
  Tensor x = tensor<float>({1, NAN, 3});
  EXPECT_TRUE(std::isnan(amax(x).item<float>()));
  EXPECT_EQ(argmax(x, 0).item<int64_t>(), 1);
}

TEST(MinMax, AmaxSplitsGradientAmongTies) {
  Tensor x = tensor<float>({1, 3, 3, 2}).set_requires_grad();
  amax(x).backward();
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{0, 0.5f, 0.5f, 0}));
}

TEST(MinMax, Gradients) {
  EXPECT_GRADCHECK(
      [](const std::vector<Tensor>& v) {
        return max(v[0].permute({1, 0, 2}), 2).first;
      },
      In{rand_input({3, 5, 7}, 1)});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& v) { return min(v[0], 0, true).first; },
                   In{rand_input({3, 5}, 2)});
  EXPECT_GRADCHECK(
      [](const std::vector<Tensor>& v) {
        return amax(v[0].slice(1, 0, 5, 2), {0, -1});
      },
      In{rand_input({3, 5, 7}, 4)});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& v) { return amin(v[0], {1}, true); },
                   In{rand_input({2, 3, 3}, 5)});
}

TEST(MinMax, BadInputThrows) {
  Tensor x = zeros({2, 3});
  EXPECT_THROW(max(x, 2), Error);
  EXPECT_THROW(argmax(zeros({2, 0}), 1), Error);
  EXPECT_THROW(amax(zeros({0, 3}), {0}), Error);
  EXPECT_THROW(amax(ones({2}, DType::boolean)), Error);
}
