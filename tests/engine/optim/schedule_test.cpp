#include "engine/optim/schedule.h"

#include <gtest/gtest.h>

#include <cmath>

#include "engine/core/error.h"

using namespace oar;
using namespace oar::optim;

TEST(Schedule, Piecewise) {
  PiecewiseLr s({100, 200}, {1.0, 0.5, 0.1});
  EXPECT_DOUBLE_EQ(s.lr(0), 1.0);
  EXPECT_DOUBLE_EQ(s.lr(99), 1.0);
  EXPECT_DOUBLE_EQ(s.lr(100), 0.5);
  EXPECT_DOUBLE_EQ(s.lr(199), 0.5);
  EXPECT_DOUBLE_EQ(s.lr(200), 0.1);
  EXPECT_DOUBLE_EQ(s.lr(100000), 0.1);
  EXPECT_THROW(PiecewiseLr({1, 2}, {1.0}), Error);
  EXPECT_THROW(PiecewiseLr({2, 1}, {1.0, 2.0, 3.0}), Error);
}

TEST(Schedule, StepAndExponential) {
  StepLr s(0.1, 30, 0.1);
  EXPECT_DOUBLE_EQ(s.lr(0), 0.1);
  EXPECT_DOUBLE_EQ(s.lr(29), 0.1);
  EXPECT_NEAR(s.lr(30), 0.01, 1e-15);
  EXPECT_NEAR(s.lr(65), 0.001, 1e-15);
  ExponentialLr e(1.0, 0.9);
  EXPECT_DOUBLE_EQ(e.lr(0), 1.0);
  EXPECT_NEAR(e.lr(3), 0.729, 1e-12);
  EXPECT_THROW(StepLr(0.1, 0), Error);
}

TEST(Schedule, Cosine) {
  CosineLr c(1.0, 100, 0.1);
  EXPECT_DOUBLE_EQ(c.lr(0), 1.0);
  EXPECT_NEAR(c.lr(50), 0.55, 1e-12);
  EXPECT_NEAR(c.lr(100), 0.1, 1e-12);
  EXPECT_NEAR(c.lr(25), 0.1 + 0.9 * (1 + std::cos(M_PI / 4)) / 2, 1e-12);
}

TEST(Schedule, CosineWarmRestarts) {
  CosineLr r = CosineLr::with_restarts(1.0, 10, 2, 0.0);  // periods 10, 20, 40
  EXPECT_DOUBLE_EQ(r.lr(0), 1.0);
  EXPECT_NEAR(r.lr(5), 0.5, 1e-12);
  EXPECT_DOUBLE_EQ(r.lr(10), 1.0);    // restart
  EXPECT_NEAR(r.lr(20), 0.5, 1e-12);  // middle of the 20-step period
  EXPECT_DOUBLE_EQ(r.lr(30), 1.0);    // restart
  EXPECT_NEAR(r.lr(50), 0.5, 1e-12);
  CosineLr same = CosineLr::with_restarts(1.0, 10, 1, 0.0);
  EXPECT_DOUBLE_EQ(same.lr(20), 1.0);
  EXPECT_NEAR(same.lr(25), 0.5, 1e-12);
}

TEST(Schedule, WarmupThenDecay) {
  WarmupLr lin(1e-3, 10, 110, DecayKind::linear);
  EXPECT_DOUBLE_EQ(lin.lr(0), 0.0);
  EXPECT_NEAR(lin.lr(5), 5e-4, 1e-15);
  EXPECT_DOUBLE_EQ(lin.lr(10), 1e-3);
  EXPECT_NEAR(lin.lr(60), 5e-4, 1e-15);
  EXPECT_NEAR(lin.lr(110), 0.0, 1e-18);
  EXPECT_NEAR(lin.lr(500), 0.0, 1e-18);

  WarmupLr cst(2.0, 4, 0, DecayKind::constant);
  EXPECT_DOUBLE_EQ(cst.lr(1), 0.5);
  EXPECT_DOUBLE_EQ(cst.lr(1000), 2.0);

  WarmupLr cos(1.0, 10, 110, DecayKind::cosine, 0.1);
  EXPECT_DOUBLE_EQ(cos.lr(10), 1.0);
  EXPECT_NEAR(cos.lr(60), 0.55, 1e-12);
  EXPECT_NEAR(cos.lr(110), 0.1, 1e-12);
  EXPECT_NEAR(cos.lr(200), 0.1, 1e-12);

  WarmupLr poly(1.0, 0, 100, DecayKind::polynomial, 0.0, 2.0);
  EXPECT_DOUBLE_EQ(poly.lr(0), 1.0);
  EXPECT_NEAR(poly.lr(50), 0.25, 1e-12);
  EXPECT_NEAR(poly.lr(100), 0.0, 1e-12);
  WarmupLr poly_end(1.0, 0, 100, DecayKind::polynomial, 0.2, 1.0);
  EXPECT_NEAR(poly_end.lr(50), 0.6, 1e-12);
  EXPECT_THROW(WarmupLr(1.0, 10, 10, DecayKind::linear), Error);
}
