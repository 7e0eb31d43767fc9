#include "engine/ops/binary.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "engine/core/error.h"
#include "engine/ops/reduce.h"
#include "tests/support/gradcheck.h"

using namespace oar;
using oar::testing::rand_input;

namespace {

using Fn2 = Tensor (*)(const Tensor&, const Tensor&);

// A non-contiguous f32 leaf: a permuted copy of random values, so kernels take strided paths.
Tensor permuted_leaf(const Shape& shape, const Shape& perm, uint64_t seed, double lo, double hi) {
  Generator g(seed);
  return rand(shape, &g, lo, hi).permute(perm).detach().set_requires_grad();
}

std::vector<float> values(const Tensor& t) {
  return t.to_vector<float>();
}

}  // namespace

TEST(Binary, GradcheckArithmeticWithBroadcasting) {
  const std::vector<std::pair<const char*, Fn2>> ops = {
      {"add", add}, {"sub", sub}, {"mul", mul}, {"div", div}, {"pow", pow}};
  for (const auto& [name, f] : ops) {
    SCOPED_TRACE(name);
    // pow and div stay well-conditioned with positive operands away from 0.
    const double lo = 0.5, hi = 1.5;
    // [3,1,5] with [4,5] -> [3,4,5]: both sides broadcast.
    Tensor a = rand_input({3, 1, 5}, 1, lo, hi), b = rand_input({4, 5}, 2, lo, hi);
    EXPECT_GRADCHECK([f](const std::vector<Tensor>& x) { return f(x[0], x[1]); },
                     std::vector<Tensor>({a, b}));
    // A 0-d operand.
    Tensor s = rand_input({}, 3, lo, hi), c = rand_input({2, 3}, 4, lo, hi);
    EXPECT_GRADCHECK([f](const std::vector<Tensor>& x) { return f(x[0], x[1]); },
                     std::vector<Tensor>({c, s}));
    EXPECT_GRADCHECK([f](const std::vector<Tensor>& x) { return f(x[0], x[1]); },
                     std::vector<Tensor>({s, c}));
  }
}

TEST(Binary, GradcheckNonContiguousInputs) {
  const std::vector<std::pair<const char*, Fn2>> ops = {
      {"add", add}, {"sub", sub}, {"mul", mul}, {"div", div}, {"pow", pow}};
  for (const auto& [name, f] : ops) {
    SCOPED_TRACE(name);
    // A permuted leaf with a sliced (step 2) view of another leaf.
    Tensor a = permuted_leaf({5, 3}, {1, 0}, 5, 0.5, 1.5);  // [3, 5], strides (1, 3)
    Tensor b = rand_input({3, 9}, 6, 0.5, 1.5);
    EXPECT_GRADCHECK([f](const std::vector<Tensor>& x) { return f(x[0], x[1].slice(1, 0, 9, 2)); },
                     std::vector<Tensor>({a, b}));
  }
}

TEST(Binary, GradcheckMaximumMinimumAwayFromTies) {
  // a in [0, 1), b in [2, 2.9) shifted by a checkerboard so each side wins half the elements
  // and no pair is within the finite-difference step of a tie.
  Tensor a = rand_input({3, 7}, 7, 0.0, 1.0);
  Tensor b = rand_input({3, 7}, 8, 2.0, 2.9);
  std::vector<float> sv(21);
  for (int i = 0; i < 21; ++i) sv[i] = (i % 2) ? -3.0f : 0.0f;
  const Tensor shift = tensor<float>(sv, {3, 7});
  EXPECT_GRADCHECK(
      [shift](const std::vector<Tensor>& x) { return maximum(x[0], add(x[1], shift)); },
      std::vector<Tensor>({a, b}));
  EXPECT_GRADCHECK(
      [shift](const std::vector<Tensor>& x) { return minimum(x[0], add(x[1], shift)); },
      std::vector<Tensor>({a, b}));
  // Broadcast [3,1] against [3,7].
  Tensor c = rand_input({3, 1}, 9, 1.2, 1.8);
  EXPECT_GRADCHECK(
      [shift](const std::vector<Tensor>& x) { return maximum(x[0], add(x[1], shift)); },
      std::vector<Tensor>({c, b}));
}

TEST(Binary, GradcheckScalarForms) {
  Tensor x = rand_input({2, 3, 5}, 10, 0.5, 1.5);
  auto check = [&](std::function<Tensor(const Tensor&)> f) {
    EXPECT_GRADCHECK([f](const std::vector<Tensor>& v) { return f(v[0]); },
                     std::vector<Tensor>({x}));
  };
  check([](const Tensor& t) { return add(t, 2.5); });
  check([](const Tensor& t) { return sub(t, 2.5); });
  check([](const Tensor& t) { return rsub(2.5, t); });
  check([](const Tensor& t) { return mul(t, -1.5); });
  check([](const Tensor& t) { return div(t, 4.0); });
  check([](const Tensor& t) { return rdiv(3.0, t); });
  check([](const Tensor& t) { return neg(t); });
  check([](const Tensor& t) { return pow(t, 2.5); });
  check([](const Tensor& t) { return pow(t, -1.0); });
  check([](const Tensor& t) { return 1.0 - t * t / 2.0 + 3.0; });
}

TEST(Binary, ValuesByHand) {
  Tensor a = tensor<float>({1, -2, 3, 4.5f}, {2, 2});
  Tensor b = tensor<float>({2, 4});
  EXPECT_EQ(values(add(a, b)), (std::vector<float>{3, 2, 5, 8.5f}));
  EXPECT_EQ(values(sub(a, b)), (std::vector<float>{-1, -6, 1, 0.5f}));
  EXPECT_EQ(values(mul(a, b)), (std::vector<float>{2, -8, 6, 18}));
  EXPECT_EQ(values(div(a, b)), (std::vector<float>{0.5f, -0.5f, 1.5f, 1.125f}));
  EXPECT_EQ(values(maximum(a, b)), (std::vector<float>{2, 4, 3, 4.5f}));
  EXPECT_EQ(values(minimum(a, b)), (std::vector<float>{1, -2, 2, 4}));
  auto p = values(pow(tensor<float>({2, 9, 0.5f}), tensor<float>({10, 0.5f, -1})));
  EXPECT_FLOAT_EQ(p[0], 1024);
  EXPECT_FLOAT_EQ(p[1], 3);
  EXPECT_FLOAT_EQ(p[2], 2);
  EXPECT_EQ(values(rsub(10.0, b)), (std::vector<float>{8, 6}));
  EXPECT_EQ(values(rdiv(1.0, b)), (std::vector<float>{0.5f, 0.25f}));
  EXPECT_EQ(values(-b), (std::vector<float>{-2, -4}));
  EXPECT_EQ(values(pow(b, 3.0)), (std::vector<float>{8, 64}));
}

TEST(Binary, MaximumMinimumPropagateNaNAndSplitTies) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  auto mx = values(maximum(tensor<float>({nan, 1}), tensor<float>({1, nan})));
  EXPECT_TRUE(std::isnan(mx[0]));
  EXPECT_TRUE(std::isnan(mx[1]));
  auto mn = values(minimum(tensor<float>({nan, 1}), tensor<float>({1, nan})));
  EXPECT_TRUE(std::isnan(mn[0]));
  EXPECT_TRUE(std::isnan(mn[1]));
  // On a tie the gradient goes to a only.
  Tensor a = tensor<float>({1, 2}).set_requires_grad();
  Tensor b = tensor<float>({1, 3}).set_requires_grad();
  sum(maximum(a, b)).backward();
  EXPECT_EQ(values(a.grad()), (std::vector<float>{1, 0}));
  EXPECT_EQ(values(b.grad()), (std::vector<float>{0, 1}));
}

TEST(Binary, BroadcastGradientSumsToInputShape) {
  Tensor a = ones({2, 1, 3}).set_requires_grad();
  Tensor b = full({4, 1}, 2.0).set_requires_grad();
  sum(mul(a, b)).backward();  // out [2, 4, 3]
  EXPECT_EQ(a.grad().shape(), (Shape{2, 1, 3}));
  EXPECT_EQ(b.grad().shape(), (Shape{4, 1}));
  EXPECT_EQ(values(a.grad()), std::vector<float>(6, 8.0f));  // 4 rows of b = 2
  EXPECT_EQ(values(b.grad()), std::vector<float>(4, 6.0f));  // 2 * 3 ones
}

TEST(Binary, Bf16Inputs) {
  Tensor a = tensor<float>({1.5f, -2.25f, 3.0f, 100.0f}).to(DType::bf16);
  Tensor b = tensor<float>({0.5f, 4.0f, -1.0f, 0.25f}).to(DType::bf16);
  Tensor s = add(a, b);
  EXPECT_EQ(s.dtype(), DType::bf16);
  EXPECT_EQ(values(s), (std::vector<float>{2.0f, 1.75f, 2.0f, 100.0f}));  // 100.25 rounds in bf16
  EXPECT_EQ(values(mul(a, b)), (std::vector<float>{0.75f, -9.0f, -3.0f, 25.0f}));
  EXPECT_EQ(values(div(a, b)), (std::vector<float>{3.0f, -0.5625f, -3.0f, 400.0f}));
  EXPECT_EQ(lt(a, b).to_vector<bool>(), (std::vector<bool>{false, true, false, false}));
  // bf16 gradients flow in bf16.
  Tensor x = tensor<float>({1, 2, 3}).to(DType::bf16).set_requires_grad();
  sum(mul(x, x)).backward();
  EXPECT_EQ(x.grad().dtype(), DType::bf16);
  EXPECT_EQ(values(x.grad()), (std::vector<float>{2, 4, 6}));
}

TEST(Binary, DtypePromotion) {
  EXPECT_EQ(promote_types(DType::i64, DType::f32), DType::f32);
  EXPECT_EQ(promote_types(DType::i32, DType::i64), DType::i64);
  EXPECT_EQ(promote_types(DType::u8, DType::i32), DType::i32);
  EXPECT_EQ(promote_types(DType::boolean, DType::u8), DType::u8);
  EXPECT_EQ(promote_types(DType::bf16, DType::f16), DType::f32);
  EXPECT_EQ(promote_types(DType::bf16, DType::f32), DType::f32);
  EXPECT_EQ(promote_types(DType::i64, DType::bf16), DType::bf16);

  Tensor i = tensor<int64_t>({7, -7, 3});
  Tensor f = tensor<float>({0.5f, 0.5f, 0.5f});
  Tensor r = add(i, f);
  EXPECT_EQ(r.dtype(), DType::f32);
  EXPECT_EQ(values(r), (std::vector<float>{7.5f, -6.5f, 3.5f}));
  Tensor j = tensor<int32_t>({2, 2, 2});
  Tensor q = div(i, j);  // integer division truncates toward zero
  EXPECT_EQ(q.dtype(), DType::i64);
  EXPECT_EQ(q.to_vector<int64_t>(), (std::vector<int64_t>{3, -3, 1}));
  EXPECT_EQ(mul(i, 2.0).dtype(), DType::i64);
  EXPECT_EQ(mul(i, 2.0).to_vector<int64_t>(), (std::vector<int64_t>{14, -14, 6}));
  Tensor h = add(i, 0.5);  // a fractional scalar makes an integer tensor f32
  EXPECT_EQ(h.dtype(), DType::f32);
  EXPECT_EQ(values(h), (std::vector<float>{7.5f, -6.5f, 3.5f}));
  Tensor p = pow(tensor<int64_t>({2, 3}), tensor<int64_t>({3, 2}));  // pow is floating
  EXPECT_EQ(p.dtype(), DType::f32);
  EXPECT_EQ(values(p), (std::vector<float>{8, 9}));
  Tensor u = sub(tensor<uint8_t>({200, 5}), tensor<uint8_t>({100, 10}));  // wraps like uint8
  EXPECT_EQ(u.dtype(), DType::u8);
  EXPECT_EQ(u.to_vector<uint8_t>(), (std::vector<uint8_t>{100, 251}));
  Tensor mixed = add(tensor<float>({1, 2}).to(DType::bf16), tensor<float>({1, 2}).to(DType::f16));
  EXPECT_EQ(mixed.dtype(), DType::f32);
  EXPECT_EQ(maximum(tensor<int32_t>({1, 9}), tensor<int32_t>({5, 2})).to_vector<int32_t>(),
            (std::vector<int32_t>{5, 9}));
}

TEST(Binary, ComparisonsAndLogic) {
  Tensor a = tensor<float>({1, 2, 3});
  Tensor b = tensor<int64_t>({2, 2, 2});
  EXPECT_EQ(eq(a, b).dtype(), DType::boolean);
  EXPECT_EQ(eq(a, b).to_vector<bool>(), (std::vector<bool>{false, true, false}));
  EXPECT_EQ(ne(a, b).to_vector<bool>(), (std::vector<bool>{true, false, true}));
  EXPECT_EQ(lt(a, b).to_vector<bool>(), (std::vector<bool>{true, false, false}));
  EXPECT_EQ(le(a, b).to_vector<bool>(), (std::vector<bool>{true, true, false}));
  EXPECT_EQ(gt(a, b).to_vector<bool>(), (std::vector<bool>{false, false, true}));
  EXPECT_EQ(ge(a, b).to_vector<bool>(), (std::vector<bool>{false, true, true}));
  EXPECT_EQ(gt(a, 1.5).to_vector<bool>(), (std::vector<bool>{false, true, true}));
  EXPECT_EQ(eq(b, 2.0).to_vector<bool>(), (std::vector<bool>{true, true, true}));
  EXPECT_EQ(lt(b, 2.5).to_vector<bool>(), (std::vector<bool>{true, true, true}));
  Tensor p = tensor<bool>({true, true, false, false});
  Tensor q = tensor<bool>({true, false, true, false});
  EXPECT_EQ(logical_and(p, q).to_vector<bool>(), (std::vector<bool>{true, false, false, false}));
  EXPECT_EQ(logical_or(p, q).to_vector<bool>(), (std::vector<bool>{true, true, true, false}));
  EXPECT_EQ(logical_xor(p, q).to_vector<bool>(), (std::vector<bool>{false, true, true, false}));
  EXPECT_EQ(logical_not(p).to_vector<bool>(), (std::vector<bool>{false, false, true, true}));
  // Non-bool inputs are truthy by != 0.
  EXPECT_EQ(logical_and(tensor<float>({0.5f, 0}), tensor<int64_t>({3, 3})).to_vector<bool>(),
            (std::vector<bool>{true, false}));
  EXPECT_EQ(logical_not(tensor<float>({0, -2})).to_vector<bool>(),
            (std::vector<bool>{true, false}));
  // Comparisons record no history.
  Tensor x = rand_input({3}, 1);
  EXPECT_FALSE(lt(x, 0.0).requires_grad());
}

TEST(Binary, InPlaceAddAndScale) {
  Tensor a = tensor<float>({1, 2, 3, 4}, {2, 2});
  add_(a, tensor<float>({10, 20}), 0.5);
  EXPECT_EQ(values(a), (std::vector<float>{6, 12, 8, 14}));
  mul_(a, 2.0);
  EXPECT_EQ(values(a), (std::vector<float>{12, 24, 16, 28}));
  Tensor i = tensor<int64_t>({1, 2});
  add_(i, tensor<float>({1.0f, 2.0f}));  // converted to a's dtype
  EXPECT_EQ(i.to_vector<int64_t>(), (std::vector<int64_t>{2, 4}));
  // A view updates its base.
  Tensor base = zeros({2, 3});
  Tensor col = base.slice(1, 1, 2);
  add_(col, ones({2, 1}));
  EXPECT_EQ(values(base), (std::vector<float>{0, 1, 0, 0, 1, 0}));
  EXPECT_THROW(add_(col, ones({2, 3})), Error);  // would broadcast a to a bigger shape
}

TEST(Binary, BadInputsThrow) {
  Tensor a = ones({2, 3});
  EXPECT_THROW(add(a, ones({4})), Error);
  EXPECT_THROW(mul(ones({2, 3}), ones({3, 2})), Error);
  EXPECT_THROW(add(a, Tensor()), Error);
  EXPECT_THROW(div(tensor<int64_t>({1, 2}), tensor<int64_t>({1, 0})), Error);
  try {
    sub(ones({5}), ones({3}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sub"), std::string::npos) << e.what();
  }
}
