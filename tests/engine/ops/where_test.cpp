#include "engine/ops/where.h"

#include <gtest/gtest.h>

#include "engine/core/error.h"
#include "engine/ops/binary.h"
#include "engine/ops/reduce.h"
#include "tests/support/gradcheck.h"

using namespace oar;
using oar::testing::rand_input;

TEST(Where, BroadcastsAllThree) {
  Tensor c = tensor<bool>({true, false, true}, {3, 1});  // [3, 1]
  Tensor a = tensor<float>({1, 2, 3, 4}, {1, 4});        // [1, 4]
  Tensor b = tensor<float>({-1, -2, -3}, {3, 1});        // [3, 1]
  Tensor y = where(c, a, b);
  EXPECT_EQ(y.shape(), (Shape{3, 4}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{1, 2, 3, 4, -2, -2, -2, -2, 1, 2, 3, 4}));
}

TEST(Where, AnyDtypeAndPromotion) {
  Tensor c = tensor<bool>({true, false}, {2});
  Tensor ai = tensor<int64_t>({5, 6});
  Tensor bi = tensor<int64_t>({-5, -6});
  EXPECT_EQ(where(c, ai, bi).to_vector<int64_t>(), (std::vector<int64_t>{5, -6}));
  Tensor bf = tensor<float>({0.5f, 0.25f});
  Tensor y = where(c, ai, bf);
  EXPECT_EQ(y.dtype(), DType::f32);
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{5.f, 0.25f}));
  Tensor h = where(c, bf.to(DType::bf16), scalar_tensor(2.0, DType::bf16));
  EXPECT_EQ(h.dtype(), DType::bf16);
  EXPECT_EQ(h.to(DType::f32).to_vector<float>(), (std::vector<float>{0.5f, 2.f}));
}

TEST(Where, NonContiguousInputs) {
  Tensor a = arange(0.0, 6.0, 1.0, DType::f32).reshape({2, 3}).t();  // [3, 2]
  Tensor c = tensor<bool>({true, false, false, true, true, false}, {2, 3}).t();
  Tensor y = where(c, a, full({3, 2}, 9.0));
  // a^T = [[0,3],[1,4],[2,5]]; c^T = [[1,1],[0,1],[0,0]]
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{0, 3, 9, 4, 9, 9}));
}

TEST(Where, GradientGoesToChosenSide) {
  Tensor c = tensor<bool>({true, false, true, false, false}, {5, 1});
  Tensor a = tensor<float>({1, 2, 3}, {1, 3}).set_requires_grad();
  Tensor b = tensor<float>({1, 2, 3, 4, 5}, {5, 1}).set_requires_grad();
  sum(where(c, a, b)).backward();
  EXPECT_EQ(a.grad().to_vector<float>(), (std::vector<float>{2, 2, 2}));
  EXPECT_EQ(b.grad().to_vector<float>(), (std::vector<float>{0, 3, 0, 3, 3}));

  Tensor cc = tensor<bool>({true, false, false, true, true, false, true}, {7, 1})
                  .expand({7, 3})
                  .permute({1, 0});  // [3, 7], non-contiguous
  Tensor x = rand_input({7, 3}, 1);
  Tensor z = rand_input({3}, 2);
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>& in) {
        return where(cc, in[0].permute({1, 0}), in[1].unsqueeze(-1));
      },
      (std::vector<Tensor>{x, z}));
}

TEST(Where, MaskedFill) {
  Tensor x = tensor<float>({1, 2, 3, 4, 5, 6}, {2, 3}).set_requires_grad();
  Tensor m = tensor<bool>({false, true, false}, {3});
  Tensor y = masked_fill(x, m, -1e9);
  EXPECT_EQ(y.shape(), (Shape{2, 3}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{1, -1e9f, 3, 4, -1e9f, 6}));
  sum(y).backward();
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{1, 0, 1, 1, 0, 1}));
  Tensor xi = tensor<int64_t>({1, 2, 3});
  EXPECT_EQ(masked_fill(xi, m, 7).to_vector<int64_t>(), (std::vector<int64_t>{1, 7, 3}));
}

TEST(Where, BadInputsThrow) {
  Tensor a = zeros({2, 3});
  EXPECT_THROW(where(zeros({2, 3}), a, a), Error);                // float condition
  EXPECT_THROW(where(tensor<bool>({true, false}), a, a), Error);  // [2] vs [2, 3]
  EXPECT_THROW(masked_fill(a, tensor<bool>({true, false, true, true}, {2, 2}), 0.0), Error);
  // a mask that would broadcast x to a larger shape is refused
  EXPECT_THROW(masked_fill(zeros({3}), tensor<bool>({true, false}, {2, 1}), 0.0), Error);
  try {
    where(zeros({2}, DType::u8), a, a);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bool"), std::string::npos) << e.what();
  }
}
