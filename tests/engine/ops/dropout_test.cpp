#include "engine/ops/dropout.h"

#include <gtest/gtest.h>

#include <omp.h>

#include "engine/autograd/grad_mode.h"
#include "engine/core/error.h"
#include "engine/ops/binary.h"
#include "engine/ops/norm.h"
#include "engine/ops/reduce.h"
#include "tests/support/gradcheck.h"

using namespace oar;

namespace {
double zero_fraction(const Tensor& y) {
  int64_t zeros_seen = 0;
  for (float v : y.to(DType::f32).to_vector<float>()) zeros_seen += v == 0.f;
  return static_cast<double>(zeros_seen) / static_cast<double>(y.numel());
}
}  // namespace

TEST(Dropout, SameSeedSameMaskDifferentSeedDifferent) {
  Tensor x = ones({200, 300});
  Generator g1(42), g2(42), g3(43);
  Tensor a = dropout(x, 0.3, true, &g1);
  Tensor b = dropout(x, 0.3, true, &g2);
  Tensor c = dropout(x, 0.3, true, &g3);
  EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());
  EXPECT_NE(a.to_vector<float>(), c.to_vector<float>());
  // the generator advanced: the next call draws a new mask
  EXPECT_NE(dropout(x, 0.3, true, &g1).to_vector<float>(), a.to_vector<float>());
  EXPECT_EQ(g1.state().offset, 2u * 200 * 300);
}

TEST(Dropout, MaskDoesNotDependOnThreadCount) {
  Tensor x = ones({300, 400});
  const int threads = omp_get_max_threads();
  Generator g1(5), g2(5);
  omp_set_num_threads(1);
  Tensor a = dropout(x, 0.5, true, &g1);
  omp_set_num_threads(threads > 1 ? threads : 2);
  Tensor b = dropout(x, 0.5, true, &g2);
  omp_set_num_threads(threads);
  EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());
}

TEST(Dropout, FractionAndMean) {
  Generator g(7);
  Tensor x = full({100000}, 2.0);
  for (double p : {0.1, 0.5, 0.8}) {
    Tensor y = dropout(x, p, true, &g);
    EXPECT_NEAR(zero_fraction(y), p, 0.01) << "p = " << p;
    EXPECT_NEAR(mean(y).item<double>(), 2.0, 0.05) << "p = " << p;
    // kept values are scaled by 1 / (1 - p)
    float kept = 0;
    for (float v : y.to_vector<float>())
      if (v != 0.f) kept = v;
    EXPECT_FLOAT_EQ(kept, static_cast<float>(2.0 / (1.0 - p)));
  }
  Tensor h = dropout(full({20000}, 1.0, DType::bf16), 0.25, true, &g);
  EXPECT_EQ(h.dtype(), DType::bf16);
  EXPECT_NEAR(zero_fraction(h), 0.25, 0.02);
}

TEST(Dropout, EvalOrZeroProbabilityIsIdentity) {
  Tensor x = ones({3, 4});
  Generator g(1);
  EXPECT_TRUE(dropout(x, 0.5, false, &g).same_storage(x));
  EXPECT_TRUE(dropout(x, 0.0, true, &g).same_storage(x));
  EXPECT_EQ(g.state().offset, 0u);
}

TEST(Dropout, BackwardUsesTheSameMask) {
  Generator g(11);
  Tensor x = oar::testing::rand_input({40, 30}, 3, 1.0, 2.0);  // never zero
  Tensor xt = x.t();                                           // non-contiguous input
  Tensor y = dropout(xt, 0.4, true, &g);
  Tensor gy = full({30, 40}, 3.0);
  y.backward(gy);
  auto yv = y.contiguous().to_vector<float>();
  auto gv = x.grad().t().contiguous().to_vector<float>();
  ASSERT_EQ(yv.size(), gv.size());
  for (size_t i = 0; i < yv.size(); ++i) {
    if (yv[i] == 0.f) {
      EXPECT_EQ(gv[i], 0.f);
    } else {
      EXPECT_FLOAT_EQ(gv[i], 3.0f / 0.6f);
    }
  }
  // Re-seeding each call makes dropout deterministic, so a finite-difference check applies.
  EXPECT_GRADCHECK(
      [](const std::vector<Tensor>& in) {
        Generator fixed(99);
        return dropout(in[0].permute({1, 0}), 0.3, true, &fixed);
      },
      (std::vector<Tensor>{oar::testing::rand_input({5, 7}, 4)}));
}

// The f32 CPU path keeps bits, drawn eight at a time: element i survives exactly when the
// counter-based rule says so (over blocks split across threads and a last partial byte).
TEST(Dropout, MaskIsTheCounterBasedRule) {
  const int64_t n = 3 * 4096 + 4099;  // several blocks; n % 8 != 0
  const double p = 0.37;
  Generator g(1234);
  g.reserve(17);
  Tensor x = full({n}, 1.5);
  const std::vector<float> y = dropout(x, p, true, &g).to_vector<float>();
  const float kept = static_cast<float>(1.5 * (1.0 / (1.0 - p)));
  for (int64_t i = 0; i < n; ++i) {
    const bool keep = Generator::to_unit_float(Generator::hash(
                          1234, 17 + static_cast<uint64_t>(i))) >= static_cast<float>(p);
    ASSERT_EQ(y[static_cast<size_t>(i)], keep ? kept : 0.0f) << "element " << i;
  }
}

// The fused residual tail equals dropout -> add -> layer_norm (same generator draws), values and
// gradients of all four inputs, with and without dropout, rows whose bits start mid-byte (K = 13)
// and rows of 64; finite differences through it.
TEST(Dropout, AddLayerNormMatchesComposition) {
  for (int64_t k : {13, 64}) {
    for (bool training : {true, false}) {
      SCOPED_TRACE("k " + std::to_string(k) + (training ? " training" : " eval"));
      const Shape shape{3, 5, k};
      std::vector<Tensor> in{oar::testing::rand_input(shape, 1), oar::testing::rand_input(shape, 2),
                             oar::testing::rand_input({k}, 3, 0.5, 1.5),
                             oar::testing::rand_input({k}, 4)};
      auto fused = [&](const std::vector<Tensor>& t) {
        Generator g(77);
        return dropout_add_layer_norm(t[0], t[1], t[2], t[3], 1e-5, 0.3, training, &g);
      };
      auto composed = [&](const std::vector<Tensor>& t) {
        Generator g(77);
        return layer_norm(add(dropout(t[0], 0.3, training, &g), t[1]), 1, t[2], t[3], 1e-5);
      };
      std::vector<Tensor> a, c;
      for (const Tensor& t : in) {
        a.push_back(t.detach().set_requires_grad());
        c.push_back(t.detach().set_requires_grad());
      }
      const Tensor ya = fused(a), yc = composed(c);
      const auto va = ya.to_vector<float>(), vc = yc.to_vector<float>();
      ASSERT_EQ(va.size(), vc.size());
      for (size_t i = 0; i < va.size(); ++i) EXPECT_NEAR(va[i], vc[i], 1e-5) << i;
      const Tensor w = oar::testing::rand_input(shape, 5).detach();
      sum(mul(ya, w)).backward();
      sum(mul(yc, w)).backward();
      for (size_t i = 0; i < 4; ++i) {
        const auto ga = a[i].grad().to_vector<float>(), gc = c[i].grad().to_vector<float>();
        ASSERT_EQ(ga.size(), gc.size());
        for (size_t e = 0; e < ga.size(); ++e) EXPECT_NEAR(ga[e], gc[e], 1e-4) << i << " " << e;
      }
      EXPECT_GRADCHECK(fused, in);
    }
  }
  // No gradient needed (inference) and undefined weight/bias.
  NoGradGuard ng;
  Tensor x = oar::testing::rand_input({4, 9}, 6), r = oar::testing::rand_input({4, 9}, 7);
  const auto got =
      dropout_add_layer_norm(x, r, Tensor(), Tensor(), 1e-5, 0.5, false).to_vector<float>();
  const auto want = layer_norm(add(x, r), 1, Tensor(), Tensor(), 1e-5).to_vector<float>();
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-5);
  EXPECT_THROW(dropout_add_layer_norm(x, ones({4, 8}), Tensor(), Tensor(), 1e-5, 0.1, true), Error);
  EXPECT_THROW(dropout_add_layer_norm(x, r, ones({8}), Tensor(), 1e-5, 0.1, true), Error);
  EXPECT_THROW(dropout_add_layer_norm(x, r, Tensor(), Tensor(), 1e-5, 1.0, true), Error);
}

TEST(Dropout, BadInputsThrow) {
  Tensor x = ones({4});
  EXPECT_THROW(dropout(x, 1.0, true), Error);
  EXPECT_THROW(dropout(x, -0.1, true), Error);
  EXPECT_THROW(dropout(x, 1.5, false), Error);
  EXPECT_THROW(dropout(ones({4}, DType::i64), 0.5, true), Error);
}
