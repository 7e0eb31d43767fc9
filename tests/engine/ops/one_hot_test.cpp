#include "engine/ops/one_hot.h"

#include <gtest/gtest.h>

#include "engine/core/error.h"

using namespace oar;

TEST(OneHot, ValuesShapeAndDtype) {
  Tensor idx = tensor<int64_t>({2, 0, 1, 2}, {2, 2});
  Tensor y = one_hot(idx, 3);
  EXPECT_EQ(y.shape(), (Shape{2, 2, 3}));
  EXPECT_EQ(y.dtype(), DType::f32);
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1}));
  Tensor yi = one_hot(tensor<int32_t>({1}), 2, DType::i64);
  EXPECT_EQ(yi.to_vector<int64_t>(), (std::vector<int64_t>{0, 1}));
  Tensor yb = one_hot(tensor<int64_t>({0, 1}), 2, DType::bf16);
  EXPECT_EQ(yb.to(DType::f32).to_vector<float>(), (std::vector<float>{1, 0, 0, 1}));
}

TEST(OneHot, NonContiguousIndices) {
  Tensor idx = tensor<int64_t>({0, 1, 2, 3, 4, 5}, {2, 3}).t();  // [[0,3],[1,4],[2,5]]
  Tensor y = one_hot(idx, 6);
  auto v = y.to_vector<float>();
  EXPECT_EQ(v[0 * 6 + 0], 1.f);
  EXPECT_EQ(v[1 * 6 + 3], 1.f);
  EXPECT_EQ(v[2 * 6 + 1], 1.f);
  EXPECT_EQ(v[5 * 6 + 5], 1.f);
  float total = 0;
  for (float f : v) total += f;
  EXPECT_EQ(total, 6.f);
}

TEST(OneHot, OutOfRangeNamesTheIndex) {
  try {
    one_hot(tensor<int64_t>({0, 7}), 3);
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("index 7"), std::string::npos) << e.what();
  }
  EXPECT_THROW(one_hot(tensor<int64_t>({-1}), 3), Error);
  EXPECT_THROW(one_hot(tensor<float>({0.f}), 3), Error);
  EXPECT_THROW(one_hot(tensor<int64_t>({0}), 0), Error);
}
