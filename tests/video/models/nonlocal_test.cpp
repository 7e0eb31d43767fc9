// Non-local networks: the non-local block against a direct computation, its zero init (the
// block starts as the identity), block placement, C2D's order-freedom against I3D's order
// sensitivity, output shapes, finite-difference gradients and training.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/core/error.h"
#include "engine/ops.h"
#include "tests/support/gradcheck.h"
#include "tests/video/models/frame_models_support.h"
#include "video/models/nonlocal.h"

using namespace oar;
using namespace oar::video;
using namespace oar::video::testing;

namespace {
NonLocalOptions tiny_nonlocal(bool i3d) {
  NonLocalOptions o;
  o.i3d = i3d;
  o.backbone = tiny_trunk();
  o.backbone.blocks = {1, 2, 2, 1};  // layer_mod 2: a non-local block after layer2.1, layer3.1
  o.num_classes = 5;
  o.dropout = 0.0;
  return o;
}
void wake_nonlocal_blocks(nn::Module& m) {
  NoGradGuard no_grad;
  for (auto& [name, t] : m.named_parameters())
    if (name.find(".nonlocal.bn.weight") != std::string::npos) nn::init::constant_(t, 0.7);
}
Tensor reverse_time(const Tensor& x) {
  std::vector<Tensor> f;
  for (int64_t t = x.size(1) - 1; t >= 0; --t) f.push_back(x.narrow(1, t, 1));
  return concat(f, 1);
}
std::map<std::string, Tensor> as_map(const nn::Module& m) {
  std::map<std::string, Tensor> s;
  for (auto& [k, v] : m.state_dict()) s[k] = v;
  return s;
}
}  // namespace

// y = x + BN(out(sum_j softmax_j(theta_i . phi_j / sqrt(d)) g_j)), with phi, g on the 2x2
// max-pooled input, computed here with loops in double.
TEST(NonLocalBlock, MatchesTheEmbeddedGaussianFormula) {
  Generator gen(1);
  const int64_t C = 4, D = 2, T = 2, H = 2, W = 4;
  NonLocalBlock b(C, D, &gen, 0.5);
  b.eval();
  {
    NoGradGuard ng;
    nn::init::uniform_(b.bn->weight, gen, 0.5, 1.5);
    nn::init::uniform_(b.bn->bias, gen, -0.5, 0.5);
    nn::init::uniform_(b.bn->running_mean, gen, -0.5, 0.5);
    nn::init::uniform_(b.bn->running_var, gen, 0.5, 1.5);
    for (auto* c : {b.theta.get(), b.phi.get(), b.g.get(), b.out.get()})
      nn::init::uniform_(c->bias, gen, -0.5, 0.5);
  }
  const Tensor x = randn({1, C, T, H, W}, &gen);
  NoGradGuard ng;
  const auto y = b(x).to_vector<float>();
  const auto xv = x.to_vector<float>();
  auto X = [&](int64_t c, int64_t t, int64_t h, int64_t w) {
    return static_cast<double>(xv[static_cast<size_t>(((c * T + t) * H + h) * W + w)]);
  };
  auto P = [&](const std::shared_ptr<nn::Conv3d>& conv, int64_t o, int64_t i) {
    return static_cast<double>(
        conv->weight.to_vector<float>()[static_cast<size_t>(o * conv->in_channels + i)]);
  };
  auto B = [](const Tensor& t, int64_t i) {
    return static_cast<double>(t.to_vector<float>()[static_cast<size_t>(i)]);
  };
  const int64_t HP = H / 2, WP = W / 2, N = T * H * W, M = T * HP * WP;
  std::vector<std::vector<double>> theta(N, std::vector<double>(D)), phi(M, std::vector<double>(D)),
      g(M, std::vector<double>(D));
  std::vector<std::vector<double>> xin(N, std::vector<double>(C)),
      pooled(M, std::vector<double>(C));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t w = 0; w < W; ++w)
        for (int64_t c = 0; c < C; ++c) xin[(t * H + h) * W + w][c] = X(c, t, h, w);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < HP; ++h)
      for (int64_t w = 0; w < WP; ++w)
        for (int64_t c = 0; c < C; ++c)
          pooled[(t * HP + h) * WP + w][c] =
              std::max({X(c, t, 2 * h, 2 * w), X(c, t, 2 * h + 1, 2 * w), X(c, t, 2 * h, 2 * w + 1),
                        X(c, t, 2 * h + 1, 2 * w + 1)});
  for (int64_t d = 0; d < D; ++d) {
    for (int64_t i = 0; i < N; ++i) {
      theta[i][d] = B(b.theta->bias, d);
      for (int64_t c = 0; c < C; ++c) theta[i][d] += P(b.theta, d, c) * xin[i][c];
    }
    for (int64_t j = 0; j < M; ++j) {
      phi[j][d] = B(b.phi->bias, d);
      g[j][d] = B(b.g->bias, d);
      for (int64_t c = 0; c < C; ++c) {
        phi[j][d] += P(b.phi, d, c) * pooled[j][c];
        g[j][d] += P(b.g, d, c) * pooled[j][c];
      }
    }
  }
  for (int64_t i = 0; i < N; ++i) {
    std::vector<double> a(M);
    double mx = -1e300, z = 0;
    for (int64_t j = 0; j < M; ++j) {
      a[j] = 0;
      for (int64_t d = 0; d < D; ++d) a[j] += theta[i][d] * phi[j][d];
      a[j] /= std::sqrt(static_cast<double>(D));
      mx = std::max(mx, a[j]);
    }
    for (int64_t j = 0; j < M; ++j) z += (a[j] = std::exp(a[j] - mx));
    std::vector<double> yv(D, 0.0);
    for (int64_t d = 0; d < D; ++d)
      for (int64_t j = 0; j < M; ++j) yv[d] += a[j] / z * g[j][d];
    for (int64_t c = 0; c < C; ++c) {
      double o = B(b.out->bias, c);
      for (int64_t d = 0; d < D; ++d) o += P(b.out, c, d) * yv[d];
      const double bn = (o - B(b.bn->running_mean, c)) / std::sqrt(B(b.bn->running_var, c) + 1e-5) *
                            B(b.bn->weight, c) +
                        B(b.bn->bias, c);
      const int64_t t = i / (H * W), h = (i / W) % H, w = i % W;
      EXPECT_NEAR(y[static_cast<size_t>(((c * T + t) * H + h) * W + w)], X(c, t, h, w) + bn, 1e-5)
          << "c " << c << " position " << i;
    }
  }
}

TEST(NonLocalNet, BlocksSitAfterEveryOtherBlockOfRes3AndRes4AndStartAsIdentity) {
  Generator gen(2);
  NonLocalNet m(tiny_nonlocal(false), &gen);
  std::vector<std::string> blocks;
  for (auto& [name, t] : m.named_parameters())
    if (name.find(".nonlocal.theta.weight") != std::string::npos) blocks.push_back(name);
  EXPECT_EQ(blocks, (std::vector<std::string>{"layer2.1.nonlocal.theta.weight",
                                              "layer3.1.nonlocal.theta.weight"}));
  EXPECT_EQ(sum(abs(m.find("layer2.1.nonlocal.bn.weight"))).item_double(), 0.0);
  // Zero-initialised BN gamma: the same trunk without non-local blocks gives the same logits.
  NonLocalOptions plain_o = tiny_nonlocal(false);
  plain_o.res3_nonlocal = plain_o.res4_nonlocal = false;
  NonLocalNet plain(plain_o, &gen);
  const auto report = plain.load_state_dict(as_map(m), /*strict=*/false);
  EXPECT_TRUE(report.missing.empty() && report.mismatched.empty()) << report.str();
  m.eval();
  plain.eval();
  NoGradGuard ng;
  const Tensor x = randn({2, 4, 3, 32, 32}, &gen);
  EXPECT_LT(max_abs_diff(m(x), plain(x)), 1e-6);
}

TEST(NonLocalNet, ShapesAndI3dKernels) {
  Generator gen(3);
  NonLocalNet c2d(tiny_nonlocal(false), &gen), i3d(tiny_nonlocal(true), &gen);
  EXPECT_EQ(c2d.find("conv1.weight").shape(), (Shape{4, 3, 1, 7, 7}));
  EXPECT_EQ(i3d.find("conv1.weight").shape(), (Shape{4, 3, 5, 7, 7}));
  // I3D: every block of layer1, even blocks of layer2/3, odd blocks of layer4 get 3x1x1.
  EXPECT_EQ(i3d.find("layer1.0.conv1.weight").shape(), (Shape{4, 4, 3, 1, 1}));
  EXPECT_EQ(i3d.find("layer2.0.conv1.weight").shape(), (Shape{8, 16, 3, 1, 1}));
  EXPECT_EQ(i3d.find("layer2.1.conv1.weight").shape(), (Shape{8, 32, 1, 1, 1}));
  EXPECT_EQ(i3d.find("layer4.0.conv1.weight").shape(), (Shape{32, 64, 1, 1, 1}));
  EXPECT_EQ(i3d_temporal_kernels({3, 4, 6, 3}),
            (std::vector<std::vector<int64_t>>{
                {3, 3, 3}, {3, 1, 3, 1}, {3, 1, 3, 1, 3, 1}, {1, 3, 1}}));  // Paddle's obtain_arc
  c2d.eval();
  i3d.eval();
  NoGradGuard ng;
  const Tensor x = randn({2, 8, 3, 32, 32}, &gen);
  EXPECT_EQ(c2d(x).shape(), (Shape{2, 5}));
  EXPECT_EQ(i3d(x).shape(), (Shape{2, 5}));
  // The trunk: [N, C, T, H, W] with T halved by the pool after layer1.
  EXPECT_EQ(i3d.features(NonLocalNet::to_channels_first(x)).shape(), (Shape{2, 128, 4, 1, 1}));
  EXPECT_THROW(c2d(randn({2, 3, 32, 32}, &gen)), Error);
}

// C2D sees each frame alone until the (2,1,1) pool and the non-local blocks, which treat
// space-time as a set: reversing an even-length clip maps frame pairs to pairs, so the logits
// do not change. I3D's temporal kernels see the order.
TEST(NonLocalNet, C2dIsOrderFreeI3dIsNot) {
  Generator gen(4);
  NonLocalNet c2d(tiny_nonlocal(false), &gen), i3d(tiny_nonlocal(true), &gen);
  wake_nonlocal_blocks(c2d);
  wake_nonlocal_blocks(i3d);
  c2d.eval();
  i3d.eval();
  NoGradGuard ng;
  const Tensor x = randn({2, 8, 3, 32, 32}, &gen);
  EXPECT_LT(max_abs_diff(c2d(reverse_time(x)), c2d(x)), 1e-5);
  EXPECT_GT(max_abs_diff(i3d(reverse_time(x)), i3d(x)), 1e-3);
}

TEST(NonLocalNet, GradientsMatchFiniteDifferences) {
  for (const bool i3d : {false, true}) {
    SCOPED_TRACE(i3d ? "i3d" : "c2d");
    Generator gen(5);
    NonLocalNet m(tiny_nonlocal(i3d), &gen);
    wake_nonlocal_blocks(m);  // a zero gamma would block every gradient inside the block
    m.eval();
    const Tensor x = randn({1, 4, 3, 16, 16}, &gen);
    const std::vector<Tensor> params = {
        m.find("layer2.1.nonlocal.theta.bias"), m.find("layer2.1.nonlocal.g.bias"),
        m.find("layer3.1.nonlocal.bn.weight"), m.find("layer1.0.conv1.weight"), m.find("fc.bias")};
    oar::testing::GradcheckOptions go;
    go.eps = 3e-4;  // logits are O(1) f32: small steps keep clear of the ReLU and max-pool kinks
    EXPECT_GRADCHECK([&](const std::vector<Tensor>&) { return m(x); }, params, go);
  }
}

TEST(NonLocalNet, SgdStepsLowerTheLoss) {
  for (const bool i3d : {false, true}) {
    SCOPED_TRACE(i3d ? "i3d" : "c2d");
    Generator gen(6);
    NonLocalNet m(tiny_nonlocal(i3d), &gen);
    const Tensor x = randn({4, 4, 3, 32, 32}, &gen);
    const Tensor y = tensor<int64_t>({0, 1, 2, 3});
    const auto [first, last] = train_steps(m, x, y, 8);
    EXPECT_LT(last, 0.7 * first) << "first " << first << " last " << last;
  }
}
