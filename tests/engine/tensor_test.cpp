#include <gtest/gtest.h>

#include "engine/autograd/grad_mode.h"
#include "engine/core/allocator.h"
#include "engine/core/error.h"
#include "engine/ops/binary.h"
#include "engine/ops/reduce.h"
#include "engine/ops/unary.h"
#include "engine/tensor/source_stamp.h"

using namespace oar;

TEST(Tensor, CreationAndViews) {
  Tensor a = arange(0.0, 24.0, 1.0, DType::f32).reshape({2, 3, 4});
  EXPECT_EQ(a.shape(), (Shape{2, 3, 4}));
  EXPECT_TRUE(a.is_contiguous());
  Tensor p = a.permute({2, 0, 1});
  EXPECT_FALSE(p.is_contiguous());
  EXPECT_TRUE(p.same_storage(a));
  EXPECT_EQ(p.shape(), (Shape{4, 2, 3}));
  // element [k, i, j] of p == a[i, j, k]
  Tensor pc = p.contiguous();
  auto v = pc.to_vector<float>();
  EXPECT_FLOAT_EQ(v[1 * 6 + 1 * 3 + 2], 1 * 12 + 2 * 4 + 1);
  Tensor s = a.slice(2, 1, 4, 2);  // columns 1 and 3
  EXPECT_EQ(s.shape(), (Shape{2, 3, 2}));
  EXPECT_FLOAT_EQ(s.contiguous().to_vector<float>()[3], 7.0f);
  Tensor e = tensor<float>({1, 2, 3}).reshape({3, 1}).expand({3, 4});
  EXPECT_EQ(e.strides()[1], 0);
  EXPECT_FLOAT_EQ(sum(e).item<float>(), 24.0f);
  EXPECT_THROW(a.view({5, 5}), Error);
  EXPECT_THROW(p.view({24}), Error);
  EXPECT_EQ(p.reshape({24}).numel(), 24);
}

TEST(Tensor, DtypeConversionsRoundTrip) {
  Tensor a = tensor<float>({1.5f, -2.25f, 1e-3f, 65504.f, 3.14159f});
  Tensor b = a.to(DType::bf16).to(DType::f32);
  Tensor h = a.to(DType::f16).to(DType::f32);
  auto vb = b.to_vector<float>();
  auto vh = h.to_vector<float>();
  EXPECT_FLOAT_EQ(vb[0], 1.5f);
  EXPECT_FLOAT_EQ(vh[3], 65504.f);
  EXPECT_NEAR(vb[4], 3.14159f, 0.02f);
  EXPECT_NEAR(vh[4], 3.14159f, 0.002f);
  EXPECT_NEAR(vh[2], 1e-3f, 1e-6f);
  EXPECT_EQ(float_to_f16(5.960464477539063e-08f), 1);  // smallest f16 subnormal
}

TEST(Tensor, BroadcastArithmeticAndGrad) {
  Tensor a = tensor<float>({1, 2, 3, 4, 5, 6}, {2, 3}).set_requires_grad();
  Tensor b = tensor<float>({10, 20, 30}).set_requires_grad();
  Tensor y = sum(mul(add(a, b), a));
  // d/da = 2a + b ; d/db = sum_rows a
  y.backward();
  auto ga = a.grad().to_vector<float>();
  auto gb = b.grad().to_vector<float>();
  EXPECT_FLOAT_EQ(ga[0], 12);
  EXPECT_FLOAT_EQ(ga[5], 42);
  EXPECT_FLOAT_EQ(gb[0], 5);
  EXPECT_FLOAT_EQ(gb[2], 9);
  EXPECT_THROW(add(a, tensor<float>({1, 2})), Error);
}

TEST(Tensor, AllocatorReportsPeak) {
  reset_peak_memory();
  const int64_t before = memory_stats().current_bytes;
  { Tensor t = zeros({1024, 1024}); }
  EXPECT_GE(memory_stats().peak_bytes - before, 4 * 1024 * 1024);
  EXPECT_EQ(memory_stats().current_bytes, before);
}

TEST(Tensor, NoGradGuard) {
  Tensor a = ones({3}).set_requires_grad();
  {
    NoGradGuard g;
    EXPECT_FALSE(exp(a).requires_grad());
  }
  EXPECT_TRUE(exp(a).requires_grad());
}

TEST(SourceStamp, CurrentUntilASourceIsWrittenReplacedOrDies) {
  Tensor a = ones({4, 3}), b = zeros({2, 3});
  const SourceStamp stamp({a, b});
  EXPECT_TRUE(stamp.current({a, b}));
  EXPECT_TRUE(stamp.alive());
  EXPECT_FALSE(stamp.current({b, a}));                 // other order
  EXPECT_FALSE(stamp.current({a}));                    // other count
  EXPECT_FALSE(stamp.current({a, b.slice(0, 1, 2)}));  // another view of the same storage
  EXPECT_FALSE(stamp.current({a, zeros({2, 3})}));     // another storage
  add_(b, ones({2, 3}));                               // an in-place write bumps the version
  EXPECT_FALSE(stamp.current({a, b}));
  const SourceStamp again({a, b});
  EXPECT_TRUE(again.current({a, b}));
  b = Tensor();  // the stamped storage dies
  EXPECT_FALSE(again.alive());
}
