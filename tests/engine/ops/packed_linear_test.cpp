// The packed-weight inference linear (engine/ops/cpu/packed_linear.*): the micro-kernel against a
// double-precision reference over row, column and depth tails, k blocks and row chunks, every
// activation, strided x; the same bits for any thread count; and the cache behind linear() and
// linear_act(): packed on a weight's first use, again after it is written, dropped when it dies,
// never used when gradients are recorded. Skipped where the CPU has no AVX-512.
#include "engine/ops/cpu/packed_linear.h"

#include <gtest/gtest.h>

#include <cmath>

#include "engine/autograd/grad_mode.h"
#include "engine/core/context.h"
#include "engine/core/error.h"
#include "engine/ops.h"
#include "tests/support/gradcheck.h"

using namespace oar;
using oar::testing::rand_input;

namespace {

#define SKIP_WITHOUT_AVX512()                                                     \
  if (!cpu::packed_linear_available()) GTEST_SKIP() << "this CPU has no AVX-512"; \
  static_assert(true)

double act_ref(double v, int act) {
  switch (act) {
    case 1:
      return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
    case 2:
      return 0.5 * v * (1.0 + std::tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
    case 3:
      return v > 0 ? v : 0;
    default:
      return v;
  }
}

// Largest |out - ref| relative to the scale of the terms summed for that element.
double worst_error(const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& b, int act) {
  const int64_t m = x.size(0), k = x.size(1), n = w.size(0);
  const auto xv = x.contiguous().to_vector<float>(), wv = w.to_vector<float>();
  const auto ov = out.to_vector<float>();
  const std::vector<float> bv = b.defined() ? b.to_vector<float>() : std::vector<float>();
  double worst = 0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double acc = bv.empty() ? 0.0 : bv[j], scale = std::fabs(acc) + 1.0;
      for (int64_t l = 0; l < k; ++l) {
        acc += double(xv[i * k + l]) * wv[j * k + l];
        scale += std::fabs(double(xv[i * k + l]) * wv[j * k + l]);
      }
      worst = std::max(worst, std::fabs(ov[i * n + j] - act_ref(acc, act)) / scale);
    }
  return worst;
}

}  // namespace

TEST(PackedLinear, MatchesDoubleReference) {
  SKIP_WITHOUT_AVX512();
  struct Case {
    int64_t m, k, n;
  };
  // Tiles of 12 rows and their remainders, panels of 32 columns and partial ones, k blocks of up
  // to 768 (800 and 1600 split), chunks of 256 rows (300).
  for (const Case c :
       {Case{16, 1, 1}, Case{17, 5, 33}, Case{24, 64, 32}, Case{128, 384, 100}, Case{161, 800, 64},
        Case{300, 1600, 47}, Case{35, 31, 70}, Case{29, 40, 50}, Case{16, 8, 63}}) {
    const Tensor xw = rand_input({c.m, c.k + 3}, 11, -2, 2);
    const Tensor x = xw.slice(1, 0, c.k);  // rows at stride k + 3
    const Tensor w = rand_input({c.n, c.k}, 12, -0.5, 0.5), b = rand_input({c.n}, 13);
    const Tensor panels = cpu::pack_linear_weight(w);
    for (int act = 0; act <= 3; ++act)
      for (bool bias : {true, false}) {
        Tensor out = empty({c.m, c.n});
        cpu::packed_linear_run(out, x, panels, c.n, bias ? b : Tensor(), act);
        EXPECT_LT(worst_error(out, x, w, bias ? b : Tensor(), act), 2e-6)
            << c.m << "x" << c.k << "x" << c.n << " act " << act << " bias " << bias;
      }
  }
}

TEST(PackedLinear, ActivationsOverAGrid) {
  SKIP_WITHOUT_AVX512();
  // out = act(x * 1): the epilogue's GELU (a rational erf) and ReLU against double precision.
  const int64_t m = 4001;
  std::vector<float> xs(m);
  for (int64_t i = 0; i < m; ++i) xs[i] = -10.0f + 20.0f * static_cast<float>(i) / (m - 1);
  const Tensor x = tensor(xs, {m, 1}), w = ones({1, 1});
  const Tensor panels = cpu::pack_linear_weight(w);
  for (int act : {1, 3}) {
    Tensor out = empty({m, 1});
    cpu::packed_linear_run(out, x, panels, 1, Tensor(), act);
    const auto ov = out.to_vector<float>();
    double worst = 0;
    for (int64_t i = 0; i < m; ++i) {
      const double want = act_ref(xs[i], act);
      worst = std::max(worst, std::fabs(ov[i] - want) / std::max(1.0, std::fabs(want)));
    }
    EXPECT_LT(worst, 1e-6) << "act " << act;
  }
}

TEST(PackedLinear, SameBitsForAnyThreadCount) {
  SKIP_WITHOUT_AVX512();
  // Panels split between threads (200 columns), and rows too where there are fewer panels than
  // threads (1 and 33 columns).
  const int before = num_threads();
  for (const auto& [m, n] : {std::pair<int64_t, int64_t>{130, 200}, {200, 1}, {40, 33}}) {
    const Tensor x = rand_input({m, 900}, 21), w = rand_input({n, 900}, 22),
                 b = rand_input({n}, 23);
    const Tensor panels = cpu::pack_linear_weight(w);
    std::vector<std::vector<float>> runs;
    for (int t : {1, 2, 3, 8}) {
      set_num_threads(t);
      Tensor out = empty({m, n});
      cpu::packed_linear_run(out, x, panels, n, b, 1);
      runs.push_back(out.to_vector<float>());
    }
    set_num_threads(before);
    for (size_t i = 1; i < runs.size(); ++i) EXPECT_EQ(runs[0], runs[i]) << m << "x" << n;
    Tensor out = empty({m, n});
    cpu::packed_linear_run(out, x, panels, n, b, 1);
    EXPECT_LT(worst_error(out, x, w, b, 1), 2e-6) << m << "x" << n;
    // Called from inside a parallel region: each caller runs it alone, with the same bits.
    std::vector<std::vector<float>> inner(4);
#pragma omp parallel for num_threads(4)
    for (int i = 0; i < 4; ++i) {
      Tensor o = empty({m, n});
      cpu::packed_linear_run(o, x, panels, n, b, 1);
      inner[static_cast<size_t>(i)] = o.to_vector<float>();
    }
    for (const auto& r : inner) EXPECT_EQ(r, runs[0]) << m << "x" << n;
  }
}

TEST(PackedLinear, NanAndInfinityPropagate) {
  SKIP_WITHOUT_AVX512();
  NoGradGuard ng;
  std::vector<float> xs(32 * 4, 0.5f);
  xs[3 * 4 + 1] = NAN;       // row 3
  xs[7 * 4 + 2] = INFINITY;  // row 7
  const Tensor x = tensor(xs, {32, 4}), w = ones({5, 4});
  for (LinearActivation act : {LinearActivation::none, LinearActivation::relu,
                               LinearActivation::gelu, LinearActivation::gelu_tanh}) {
    const auto y = linear_act(x, w, Tensor(), act).to_vector<float>();
    for (int64_t j = 0; j < 5; ++j) {
      EXPECT_TRUE(std::isnan(y[3 * 5 + j])) << static_cast<int>(act);
      EXPECT_EQ(y[7 * 5 + j], INFINITY) << static_cast<int>(act);
      // A finite row: act(2) (four 0.5 x 1 terms).
      EXPECT_NEAR(y[0 * 5 + j], act_ref(2.0, static_cast<int>(act)), 1e-6) << static_cast<int>(act);
    }
  }
}

TEST(PackedLinear, LinearReadsStridedRowsInPlace) {
  SKIP_WITHOUT_AVX512();
  NoGradGuard ng;
  // x [2, 20, 24] sliced from [2, 20, 30]: rows 30 apart, taken in place as [40, 24].
  const Tensor wide = rand_input({2, 20, 30}, 91), w = rand_input({70, 24}, 92),
               b = rand_input({70}, 93);
  const Tensor x = wide.slice(2, 0, 24);
  const Tensor y = linear(x, w, b);
  ASSERT_EQ(y.shape(), (Shape{2, 20, 70}));
  EXPECT_LT(worst_error(y.reshape({40, 70}), x.contiguous().reshape({40, 24}), w, b, 0), 2e-6);
}

TEST(PackedLinear, LinearPacksOnFirstUseAndRepacksAfterAWrite) {
  SKIP_WITHOUT_AVX512();
  NoGradGuard ng;
  const Tensor x = rand_input({4, 32, 48}, 31);  // 128 rows
  Tensor w = rand_input({40, 48}, 32);
  const Tensor b = rand_input({40}, 33);
  auto reference = [&] { return add(matmul(x, w.detach().t()), b); };
  const int64_t cached = cpu::packed_linear_cache_size();
  const Tensor first = linear(x, w, b);
  EXPECT_EQ(cpu::packed_linear_cache_size(), cached + 1);
  EXPECT_LT(amax(abs(sub(first, reference()))).item<float>(), 1e-5f);
  // Same operands, same bits (the copy made by the first call).
  EXPECT_EQ(linear(x, w, b).to_vector<float>(), first.to_vector<float>());
  // An in-place write (an optimizer step) bumps the storage's version: the next use packs the
  // new values.
  add_(w, ones({40, 48}), 0.25);
  const Tensor after = linear(x, w, b);
  EXPECT_EQ(cpu::packed_linear_cache_size(), cached + 1);
  EXPECT_LT(amax(abs(sub(after, reference()))).item<float>(), 1e-5f);
  EXPECT_GT(amax(abs(sub(after, first))).item<float>(), 1.0f);
  const Tensor act = linear_act(x, w, b, LinearActivation::gelu);
  EXPECT_LT(amax(abs(sub(act, gelu(reference(), false)))).item<float>(), 1e-5f);
  // A dead weight's copy goes when the next new weight is seen.
  w = Tensor();
  const Tensor other = rand_input({8, 48}, 34);
  linear(x, other, Tensor());
  EXPECT_EQ(cpu::packed_linear_cache_size(), cached + 1);
}

TEST(PackedLinear, NotUsedWhenGradientsAreRecorded) {
  SKIP_WITHOUT_AVX512();
  const Tensor x = rand_input({128, 16}, 41);
  const Tensor w = rand_input({8, 16}, 42);
  const int64_t cached = cpu::packed_linear_cache_size();
  for (int i = 0; i < 3; ++i) {
    const Tensor y = linear_act(x, w, Tensor(), LinearActivation::relu);
    sum(y).backward();
  }
  EXPECT_EQ(cpu::packed_linear_cache_size(), cached);
  EXPECT_TRUE(w.grad().defined());
}

TEST(PackedLinear, RejectsMismatchedPanels) {
  SKIP_WITHOUT_AVX512();
  const Tensor x = rand_input({16, 10}, 51), w = rand_input({33, 10}, 52);
  const Tensor panels = cpu::pack_linear_weight(w);
  Tensor out = empty({16, 70});
  try {
    cpu::packed_linear_run(out, x, panels, 70, Tensor(), 0);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("do not hold an [70, 10] weight"), std::string::npos)
        << e.what();
  }
}

TEST(PackedLinear, StackedPartsAreTheConcatenatedWeight) {
  SKIP_WITHOUT_AVX512();
  NoGradGuard ng;
  const Tensor x = rand_input({2, 20, 24}, 61);  // 40 rows
  Tensor wq = rand_input({32, 24}, 62), wk = rand_input({64, 24}, 63), wv = rand_input({9, 24}, 64);
  const Tensor b = rand_input({105}, 65);
  int built = 0;
  auto stacked = [&] {
    ++built;
    return concat({wq, wk, wv}, 0);
  };
  // Packing the parts is packing their concatenation: the same panels, so the same bits.
  EXPECT_EQ(cpu::pack_linear_weights({wq, wk, wv}).to_vector<float>(),
            cpu::pack_linear_weight(concat({wq, wk, wv}, 0)).to_vector<float>());
  const Tensor y = linear_stacked(x, {wq, wk, wv}, b, stacked);
  EXPECT_EQ(built, 0);  // the packed path never needs the stacked copy
  ASSERT_EQ(y.shape(), (Shape{2, 20, 105}));
  EXPECT_EQ(y.to_vector<float>(), linear(x, concat({wq, wk, wv}, 0), b).to_vector<float>());
  // Writing one part repacks the stack.
  add_(wk, ones({64, 24}), 0.5);
  EXPECT_LT(amax(abs(sub(linear_stacked(x, {wq, wk, wv}, b, stacked),
                         add(matmul(x, concat({wq, wk, wv}, 0).t()), b))))
                .item<float>(),
            1e-5f);
  EXPECT_EQ(built, 0);
  // A part other than the last whose rows are not whole panels: the stacked weight is used.
  const Tensor w9 = rand_input({9, 24}, 66);
  const Tensor z = linear_stacked(x, {w9, wq}, Tensor(), [&] {
    ++built;
    return concat({w9, wq}, 0);
  });
  EXPECT_EQ(built, 1);
  EXPECT_LT(amax(abs(sub(z, matmul(x, concat({w9, wq}, 0).t())))).item<float>(), 1e-5f);
}

TEST(PackedLinear, StackedWithAnUndefinedPartUsesTheStackedWeight) {
  NoGradGuard ng;
  const Tensor x = rand_input({32, 8}, 74), wa = rand_input({32, 8}, 75);
  const Tensor y = linear_stacked(x, {wa, Tensor()}, Tensor(), [&] { return wa; });
  EXPECT_LT(amax(abs(sub(y, matmul(x, wa.t())))).item<float>(), 1e-5f);
}

TEST(PackedLinear, StackedWithGradientsUsesTheStackedWeight) {
  // Everywhere (with or without AVX-512): gradients reach the parts through stacked().
  const Tensor x = rand_input({3, 8}, 71);
  const Tensor wa = rand_input({4, 8}, 72), wb = rand_input({2, 8}, 73);
  int built = 0;
  const Tensor y = linear_stacked(x, {wa, wb}, Tensor(), [&] {
    ++built;
    return concat({wa, wb}, 0);
  });
  EXPECT_EQ(built, 1);
  sum(y).backward();
  ASSERT_TRUE(wa.grad().defined() && wb.grad().defined());
  EXPECT_EQ(wa.grad().shape(), (Shape{4, 8}));
}

TEST(PackedLinear, ReleaseDropsEveryCopy) {
  SKIP_WITHOUT_AVX512();
  NoGradGuard ng;
  const Tensor x = rand_input({16, 8}, 81), w = rand_input({4, 8}, 82);
  const Tensor before = linear(x, w);
  EXPECT_GE(cpu::packed_linear_cache_size(), 1);
  release_packed_linear_weights();
  EXPECT_EQ(cpu::packed_linear_cache_size(), 0);
  EXPECT_EQ(linear(x, w).to_vector<float>(), before.to_vector<float>());  // packed again
}

TEST(PackedLinear, ARowsResultDoesNotDependOnTheBatch) {
  SKIP_WITHOUT_AVX512();
  NoGradGuard ng;
  // The first 3 rows alone, in a batch of 13, and of 300 (two chunks, several tiles), through
  // linear and linear_act: the same bits for those rows, with k in two blocks (1000).
  const Tensor x = rand_input({300, 1000}, 101), w = rand_input({70, 1000}, 102),
               b = rand_input({70}, 103);
  for (LinearActivation act : {LinearActivation::none, LinearActivation::gelu}) {
    const auto first = [&](int64_t rows) {
      const Tensor y = linear_act(x.slice(0, 0, rows), w, b, act);
      return y.slice(0, 0, 3).contiguous().to_vector<float>();
    };
    const auto alone = first(3);
    EXPECT_EQ(first(13), alone) << static_cast<int>(act);
    EXPECT_EQ(first(300), alone) << static_cast<int>(act);
  }
}
