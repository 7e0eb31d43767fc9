#include "engine/ops/unary.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

#include "engine/core/error.h"
#include "engine/ops/binary.h"
#include "engine/ops/reduce.h"
#include "tests/support/gradcheck.h"

using namespace oar;

namespace {

using UnaryFn = std::function<Tensor(const Tensor&)>;

struct Case {
  const char* name;
  UnaryFn f;
  double lo, hi;              // input range
  std::vector<double> kinks;  // points where the derivative jumps
};

// Random values in [lo, hi) nudged at least 0.05 away from every kink, so central differences
// (step 1e-3) never straddle one.
std::vector<float> away_from_kinks(int64_t n, uint64_t seed, const Case& c) {
  Generator g(seed);
  std::vector<float> v = rand({n}, &g, c.lo, c.hi).to_vector<float>();
  for (float& x : v)
    for (double k : c.kinks)
      if (std::fabs(x - k) < 0.05) x = static_cast<float>(k + (x >= k ? 0.05 : -0.05));
  return v;
}

Tensor leaf(const Shape& shape, uint64_t seed, const Case& c) {
  return tensor<float>(away_from_kinks(shape_numel(shape), seed, c), shape).set_requires_grad();
}

std::vector<Case> differentiable_cases() {
  const double inf = std::numeric_limits<double>::infinity();
  return {
      {"exp", [](const Tensor& x) { return exp(x); }, -2, 2, {}},
      {"log", [](const Tensor& x) { return log(x); }, 0.3, 3, {}},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, 0.3, 3, {}},
      {"rsqrt", [](const Tensor& x) { return rsqrt(x); }, 0.3, 3, {}},
      {"abs", [](const Tensor& x) { return abs(x); }, -2, 2, {0}},
      {"erf", [](const Tensor& x) { return erf(x); }, -2, 2, {}},
      {"sin", [](const Tensor& x) { return sin(x); }, -3, 3, {}},
      {"cos", [](const Tensor& x) { return cos(x); }, -3, 3, {}},
      {"reciprocal", [](const Tensor& x) { return reciprocal(x); }, 0.4, 2, {}},
      {"square", [](const Tensor& x) { return square(x); }, -2, 2, {}},
      {"clamp", [](const Tensor& x) { return clamp(x, -0.5, 0.75); }, -2, 2, {-0.5, 0.75}},
      {"clamp_open_low", [=](const Tensor& x) { return clamp(x, -inf, 0.25); }, -2, 2, {0.25}},
      {"relu", [](const Tensor& x) { return relu(x); }, -2, 2, {0}},
      {"relu6", [](const Tensor& x) { return relu6(x); }, -2, 8, {0, 6}},
      {"leaky_relu", [](const Tensor& x) { return leaky_relu(x, 0.2); }, -2, 2, {0}},
      {"elu", [](const Tensor& x) { return elu(x, 1.5); }, -2, 2, {0}},
      {"gelu", [](const Tensor& x) { return gelu(x, false); }, -3, 3, {}},
      {"gelu_tanh", [](const Tensor& x) { return gelu(x, true); }, -3, 3, {}},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, -4, 4, {}},
      {"tanh", [](const Tensor& x) { return tanh(x); }, -2, 2, {}},
      {"silu", [](const Tensor& x) { return silu(x); }, -4, 4, {}},
      {"hard_sigmoid", [](const Tensor& x) { return hard_sigmoid(x); }, -5, 5, {-3, 3}},
      {"hard_swish", [](const Tensor& x) { return hard_swish(x); }, -5, 5, {-3, 3}},
      {"softplus", [](const Tensor& x) { return softplus(x); }, -3, 3, {}},
      {"softplus_beta", [](const Tensor& x) { return softplus(x, 2.0, 4.0); }, -3, 3, {2.0}},
  };
}

std::vector<float> values(const Tensor& t) {
  return t.to_vector<float>();
}

}  // namespace

TEST(Unary, GradcheckOddShapes) {
  for (const Case& c : differentiable_cases()) {
    SCOPED_TRACE(c.name);
    auto f = [fn = c.f](const std::vector<Tensor>& x) { return fn(x[0]); };
    EXPECT_GRADCHECK(f, std::vector<Tensor>({leaf({3, 5, 7}, 1, c)}));
    EXPECT_GRADCHECK(f, std::vector<Tensor>({leaf({1}, 2, c)}));
    EXPECT_GRADCHECK(f, std::vector<Tensor>({leaf({}, 3, c)}));
  }
}

TEST(Unary, GradcheckNonContiguous) {
  for (const Case& c : differentiable_cases()) {
    SCOPED_TRACE(c.name);
    auto fn = c.f;
    // Strided views of a contiguous leaf...
    Tensor x = leaf({4, 3, 5}, 4, c);
    EXPECT_GRADCHECK(
        [fn](const std::vector<Tensor>& v) {
          return fn(v[0].permute({2, 0, 1}));
        },
        std::vector<Tensor>({x}));
    EXPECT_GRADCHECK([fn](const std::vector<Tensor>& v) { return fn(v[0].slice(2, 1, 5, 2)); },
                     std::vector<Tensor>({x}));
    // ...and a leaf that is itself non-contiguous.
    Tensor p = leaf({5, 6}, 5, c).detach().t().set_requires_grad();
    ASSERT_FALSE(p.is_contiguous());
    EXPECT_GRADCHECK([fn](const std::vector<Tensor>& v) { return fn(v[0]); },
                     std::vector<Tensor>({p}));
  }
}

TEST(Unary, ValuesByHand) {
  auto one = [](const Tensor& t) { return t.item<float>(); };
  const Tensor x1 = scalar_tensor(1.0);
  EXPECT_FLOAT_EQ(one(exp(x1)), 2.7182817f);
  EXPECT_FLOAT_EQ(one(log(scalar_tensor(M_E))), 1.0f);
  EXPECT_FLOAT_EQ(one(sqrt(scalar_tensor(6.25))), 2.5f);
  EXPECT_FLOAT_EQ(one(rsqrt(scalar_tensor(4.0))), 0.5f);
  EXPECT_FLOAT_EQ(one(erf(scalar_tensor(0.5))), 0.5204999f);
  EXPECT_FLOAT_EQ(one(sin(scalar_tensor(M_PI / 6))), 0.5f);
  EXPECT_NEAR(one(cos(scalar_tensor(M_PI / 3))), 0.5f, 1e-7);
  EXPECT_FLOAT_EQ(one(reciprocal(scalar_tensor(-4.0))), -0.25f);
  EXPECT_FLOAT_EQ(one(square(scalar_tensor(-3.0))), 9.0f);
  EXPECT_EQ(values(abs(tensor<float>({-1.5f, 0, 2}))), (std::vector<float>{1.5f, 0, 2}));
  EXPECT_EQ(values(sign(tensor<float>({-1.5f, 0, 2}))), (std::vector<float>{-1, 0, 1}));
  EXPECT_EQ(values(clamp(tensor<float>({-3, 0.5f, 3}), -1, 1)), (std::vector<float>{-1, 0.5f, 1}));
  EXPECT_EQ(values(relu(tensor<float>({-3, 0, 3}))), (std::vector<float>{0, 0, 3}));
  EXPECT_EQ(values(relu6(tensor<float>({-3, 4, 7}))), (std::vector<float>{0, 4, 6}));
  EXPECT_EQ(values(leaky_relu(tensor<float>({-2, 3}), 0.1)), (std::vector<float>{-0.2f, 3}));
  EXPECT_FLOAT_EQ(one(elu(scalar_tensor(-1.0), 2.0)), 2.0f * (std::exp(-1.0f) - 1.0f));
  EXPECT_FLOAT_EQ(one(gelu(x1, false)), 0.8413447f);
  EXPECT_FLOAT_EQ(one(gelu(x1, true)), 0.8411920f);
  EXPECT_FLOAT_EQ(one(sigmoid(scalar_tensor(0.0))), 0.5f);
  EXPECT_FLOAT_EQ(one(sigmoid(scalar_tensor(2.0))), 0.8807971f);
  EXPECT_FLOAT_EQ(one(tanh(scalar_tensor(0.5))), 0.46211716f);
  EXPECT_FLOAT_EQ(one(silu(x1)), 0.7310586f);
  EXPECT_FLOAT_EQ(one(hard_sigmoid(x1)), 4.0f / 6.0f);
  EXPECT_EQ(values(hard_sigmoid(tensor<float>({-4, 4}))), (std::vector<float>{0, 1}));
  EXPECT_FLOAT_EQ(one(hard_swish(x1)), 4.0f / 6.0f);
  EXPECT_EQ(values(hard_swish(tensor<float>({-4, 4}))), (std::vector<float>{0, 4}));
  EXPECT_FLOAT_EQ(one(softplus(x1)), 1.3132616f);
  EXPECT_FLOAT_EQ(one(softplus(x1, 2.0)), std::log1p(std::exp(2.0f)) / 2.0f);
  EXPECT_FLOAT_EQ(one(softplus(scalar_tensor(30.0))), 30.0f);  // linear past the threshold
}

// The GELUs' vectorised kernels against the formulas in double over [-12, 12] (a long
// contiguous tensor, so the vector loops run), values and gradients: error within 1e-5 of
// |value| + 0.01 (relative, with an absolute floor of 1e-7 where the value crosses or nears 0).
TEST(Unary, GeluMatchesFormulasInDouble) {
  std::vector<float> xs;
  for (int i = -12000; i <= 12000; ++i) xs.push_back(static_cast<float>(i) / 1000.0f);
  const int64_t n = static_cast<int64_t>(xs.size());
  for (bool approx : {false, true}) {
    SCOPED_TRACE(approx ? "tanh" : "erf");
    Tensor x = tensor<float>(xs, {n}).set_requires_grad();
    Tensor y = gelu(x, approx);
    sum(y).backward();
    const std::vector<float> got = values(y), dgot = values(x.grad());
    double worst = 0, dworst = 0;
    for (size_t i = 0; i < xs.size(); ++i) {
      const double v = xs[i];
      double want, dwant;
      if (approx) {
        const double k = std::sqrt(2.0 / M_PI), u = k * (v + 0.044715 * v * v * v);
        const double t = std::tanh(u);
        want = v / (1 + std::exp(-2 * u));  // 0.5 v (1 + tanh u) without cancellation
        dwant = 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * k * (1 + 3 * 0.044715 * v * v);
      } else {
        const double cdf = 0.5 * std::erfc(-v / std::sqrt(2.0));
        want = v * cdf;
        dwant = cdf + v * std::exp(-0.5 * v * v) / std::sqrt(2 * M_PI);
      }
      worst = std::max(worst, std::fabs(got[i] - want) / (std::fabs(want) + 0.01));
      dworst = std::max(dworst, std::fabs(dgot[i] - dwant) / (std::fabs(dwant) + 0.01));
    }
    EXPECT_LT(worst, 1e-5);
    EXPECT_LT(dworst, 1e-5);
  }
}

TEST(Unary, GradientValuesByHand) {
  Tensor x = tensor<float>({-2, -0.5f, 0.5f, 2}).set_requires_grad();
  sum(relu6(mul(x, 4.0))).backward();  // 4x = -8, -2, 2, 8: gradient 4 inside (0, 6)
  EXPECT_EQ(values(x.grad()), (std::vector<float>{0, 0, 4, 0}));
  Tensor y = tensor<float>({-4, -1, 1, 4}).set_requires_grad();
  sum(hard_swish(y)).backward();  // (2x + 3) / 6 inside (-3, 3)
  EXPECT_EQ(values(y.grad()), (std::vector<float>{0, 1.0f / 6, 5.0f / 6, 1}));
  Tensor z = tensor<float>({-1, 2}).set_requires_grad();
  sum(leaky_relu(z, 0.25)).backward();
  EXPECT_EQ(values(z.grad()), (std::vector<float>{0.25f, 1}));
  Tensor r = tensor<float>({-1, 2, -3}).set_requires_grad();
  sum(relu(r)).backward();  // no gradient through the clamped zeros
  EXPECT_EQ(values(r.grad()), (std::vector<float>{0, 1, 0}));
  Tensor w = tensor<float>({-2, 0.5f, 3}).set_requires_grad();
  sum(clamp(w, -1, 1)).backward();
  EXPECT_EQ(values(w.grad()), (std::vector<float>{0, 1, 0}));
}

TEST(Unary, SignHasNoGradientHistory) {
  Tensor x = oar::testing::rand_input({3}, 1);
  EXPECT_FALSE(sign(x).requires_grad());
  EXPECT_TRUE(abs(x).requires_grad());
}

TEST(Unary, NaNPropagates) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor x = tensor<float>({nan});
  EXPECT_TRUE(std::isnan(relu(x).item<float>()));
  EXPECT_TRUE(std::isnan(clamp(x, -1, 1).item<float>()));
  EXPECT_TRUE(std::isnan(exp(x).item<float>()));
  EXPECT_TRUE(std::isnan(log(tensor<float>({-1})).item<float>()));
}

TEST(Unary, Bf16AndF16Inputs) {
  const std::vector<float> v = {-1.5f, -0.25f, 0.5f, 1.75f};
  const Tensor x32 = tensor<float>(v, {4});
  const std::vector<std::pair<const char*, UnaryFn>> ops = {
      {"exp", [](const Tensor& t) { return exp(t); }},
      {"tanh", [](const Tensor& t) { return tanh(t); }},
      {"sigmoid", [](const Tensor& t) { return sigmoid(t); }},
      {"gelu", [](const Tensor& t) { return gelu(t); }},
      {"silu", [](const Tensor& t) { return silu(t); }},
      {"abs", [](const Tensor& t) { return abs(t); }},
      {"softplus", [](const Tensor& t) { return softplus(t); }},
  };
  for (const auto& [name, f] : ops) {
    SCOPED_TRACE(name);
    const auto want = values(f(x32));
    for (DType dt : {DType::bf16, DType::f16}) {
      Tensor y = f(x32.to(dt));
      EXPECT_EQ(y.dtype(), dt);
      const auto got = values(y);
      const double tol = dt == DType::bf16 ? 1e-2 : 2e-3;  // 8 and 11 significant bits
      for (size_t i = 0; i < v.size(); ++i)
        EXPECT_NEAR(got[i], want[i], tol * (1 + std::fabs(want[i])));
    }
  }
  // Backward in bf16 matches the f32 gradient to bf16 precision.
  Tensor xb = x32.to(DType::bf16).set_requires_grad();
  sum(tanh(xb)).backward();
  EXPECT_EQ(xb.grad().dtype(), DType::bf16);
  Tensor xf = x32.clone().set_requires_grad();
  sum(tanh(xf)).backward();
  const auto gb = values(xb.grad()), gf = values(xf.grad());
  for (size_t i = 0; i < gb.size(); ++i) EXPECT_NEAR(gb[i], gf[i], 1e-2);
}

TEST(Unary, IntegerDtypes) {
  Tensor i = tensor<int64_t>({-3, 0, 5});
  EXPECT_EQ(abs(i).dtype(), DType::i64);
  EXPECT_EQ(abs(i).to_vector<int64_t>(), (std::vector<int64_t>{3, 0, 5}));
  EXPECT_EQ(sign(i).to_vector<int64_t>(), (std::vector<int64_t>{-1, 0, 1}));
  EXPECT_EQ(square(i).to_vector<int64_t>(), (std::vector<int64_t>{9, 0, 25}));
  EXPECT_EQ(relu(i).to_vector<int64_t>(), (std::vector<int64_t>{0, 0, 5}));
  Tensor j = tensor<int32_t>({-7, 4});
  EXPECT_EQ(abs(j).to_vector<int32_t>(), (std::vector<int32_t>{7, 4}));
  EXPECT_EQ(relu(j).to_vector<int32_t>(), (std::vector<int32_t>{0, 4}));
  Tensor u = tensor<uint8_t>({0, 3, 250});
  EXPECT_EQ(sign(u).to_vector<uint8_t>(), (std::vector<uint8_t>{0, 1, 1}));
  EXPECT_EQ(abs(u).to_vector<uint8_t>(), (std::vector<uint8_t>{0, 3, 250}));
}

TEST(Unary, BadInputsThrow) {
  Tensor i = tensor<int64_t>({1, 2});
  EXPECT_THROW(exp(i), Error);
  EXPECT_THROW(sigmoid(i), Error);
  EXPECT_THROW(gelu(tensor<int32_t>({1})), Error);
  EXPECT_THROW(abs(tensor<bool>({true})), Error);
  EXPECT_THROW(exp(Tensor()), Error);
  EXPECT_THROW(clamp(ones({2}), 1.0, -1.0), Error);
  EXPECT_THROW(softplus(ones({2}), 0.0), Error);
  try {
    tanh(i);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("tanh"), std::string::npos) << msg;
    EXPECT_NE(msg.find("i64"), std::string::npos) << msg;
  }
}
