#include "engine/ops/sort.h"

#include <gtest/gtest.h>

#include <cmath>

#include <algorithm>
#include <numeric>

#include "engine/core/error.h"
#include "tests/support/gradcheck.h"

using namespace oar;
using oar::testing::rand_input;
using In = std::vector<Tensor>;
using F = std::vector<float>;
using I = std::vector<int64_t>;

TEST(Sort, TopkTiesTakeLowerIndexFirst) {
  Tensor x = tensor<float>({1, 3, 3, 2});
  auto [v, i] = topk(x, 2);
  EXPECT_EQ(v.to_vector<float>(), (F{3, 3}));
  EXPECT_EQ(i.to_vector<int64_t>(), (I{1, 2}));
  auto [vs, is] = topk(x, 3, 0, false);
  EXPECT_EQ(vs.to_vector<float>(), (F{1, 2, 3}));
  EXPECT_EQ(is.to_vector<int64_t>(), (I{0, 3, 1}));
  EXPECT_EQ(topk(x, 0).first.shape(), (Shape{0}));
}

TEST(Sort, StableSortAndArgsort) {
  Tensor x = tensor<float>({2, 1, 2, 1});
  auto [v, i] = sort(x);
  EXPECT_EQ(v.to_vector<float>(), (F{1, 1, 2, 2}));
  EXPECT_EQ(i.to_vector<int64_t>(), (I{1, 3, 0, 2}));
  EXPECT_EQ(argsort(x, 0, true).to_vector<int64_t>(), (I{0, 2, 1, 3}));
  EXPECT_EQ(argsort(tensor<int64_t>({5, -2, 9})).to_vector<int64_t>(), (I{1, 0, 2}));
  // NaN sorts as the largest value.
  EXPECT_EQ(argsort(tensor<float>({NAN, 0, 1})).to_vector<int64_t>(), (I{1, 2, 0}));
}

TEST(Sort, AlongFirstDimOfPermutedInput) {
  Tensor x = rand_input({3, 6}, 4).detach().t();  // [6, 3], sort along dim 0
  auto [v, i] = sort(x, 0, true);
  auto xv = x.contiguous().to_vector<float>();
  auto vv = v.to_vector<float>();
  auto iv = i.to_vector<int64_t>();
  for (int c = 0; c < 3; ++c) {
    std::vector<int64_t> order(6);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return xv[a * 3 + c] > xv[b * 3 + c]; });
    for (int r = 0; r < 6; ++r) {
      EXPECT_EQ(iv[r * 3 + c], order[r]);
      EXPECT_EQ(vv[r * 3 + c], xv[order[r] * 3 + c]);
    }
  }
  auto [tv, ti] = topk(x, 2, 0);
  EXPECT_EQ(tv.shape(), (Shape{2, 3}));
  for (int c = 0; c < 3; ++c) EXPECT_EQ(ti.to_vector<int64_t>()[3 + c], iv[3 + c]);
}

TEST(Sort, CumsumModes) {
  Tensor x = tensor<float>({1, 2, 3, 4});
  EXPECT_EQ(cumsum(x, 0).to_vector<float>(), (F{1, 3, 6, 10}));
  EXPECT_EQ(cumsum(x, 0, true).to_vector<float>(), (F{0, 1, 3, 6}));
  EXPECT_EQ(cumsum(x, 0, false, true).to_vector<float>(), (F{10, 9, 7, 4}));
  EXPECT_EQ(cumsum(x, -1, true, true).to_vector<float>(), (F{9, 7, 4, 0}));
  Tensor m = tensor<int32_t>({1, 2, 3, 4, 5, 6}, {2, 3}).t();  // [[1,4],[2,5],[3,6]]
  Tensor c = cumsum(m, 0);
  EXPECT_EQ(c.dtype(), DType::i64);
  EXPECT_EQ(c.to_vector<int64_t>(), (I{1, 4, 3, 9, 6, 15}));
}

TEST(Sort, Gradients) {
  EXPECT_GRADCHECK([](const std::vector<Tensor>& v) { return topk(v[0], 3, 1).first; },
                   In{rand_input({2, 5, 3}, 1)});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& v) { return topk(v[0].t(), 2, -1, false).first; },
                   In{rand_input({5, 3}, 2)});
  EXPECT_GRADCHECK(
      [](const std::vector<Tensor>& v) {
        return sort(v[0].permute({2, 0, 1}), 0, true).first;
      },
      In{rand_input({2, 3, 4}, 3)});
  for (bool exclusive : {false, true})
    for (bool reverse : {false, true}) {
      EXPECT_GRADCHECK(
          [&](const std::vector<Tensor>& v) { return cumsum(v[0].t(), 0, exclusive, reverse); },
          In{rand_input({3, 5}, 4)});
      EXPECT_GRADCHECK(
          [&](const std::vector<Tensor>& v) { return cumsum(v[0], -1, exclusive, reverse); },
          In{rand_input({2, 3, 4}, 5)});
    }
}

TEST(Sort, BadInputThrows) {
  EXPECT_THROW(topk(zeros({2, 3}), 4), Error);
  EXPECT_THROW(topk(zeros({2, 3}), -1), Error);
  EXPECT_THROW(sort(zeros({2, 3}), 2), Error);
  EXPECT_THROW(cumsum(zeros({2, 3}), -3), Error);
}
