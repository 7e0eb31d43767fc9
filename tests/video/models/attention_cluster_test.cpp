// Attention Cluster: shapes, the reference parameter count, the shifting operation's
// normalisation, padding invariance, invariance to frame order, finite-difference gradients and
// a short fit.
#include "video/models/attention_cluster.h"

#include <gtest/gtest.h>

#include <cmath>

#include "engine/core/error.h"
#include "engine/nn.h"
#include "engine/ops.h"
#include "tests/support/gradcheck.h"
#include "tests/video/models/sequence_checks.h"

using namespace oar;
using namespace oar::video;
using namespace oar::video::seqcheck;

namespace {

AttentionClusterOptions tiny(double drop_rate = 0.0) {
  AttentionClusterOptions o;
  o.feature_dims = {6, 4};
  o.num_classes = 5;
  o.drop_rate = drop_rate;
  o.cluster_nums = {3, 2};
  o.fc_sizes = {8, 7};
  return o;
}

}  // namespace

TEST(AttentionCluster, OutputShapeAndStateNames) {
  Generator gen(1);
  AttentionCluster m(tiny(), &gen);
  const TinyBatch b = tiny_batch(2);
  EXPECT_EQ(m.forward(b.rgb, b.audio, b.lengths).shape(), (Shape{3, 5}));
  EXPECT_EQ(m.find("rgb.scores.weight").shape(), (Shape{3, 6}));
  EXPECT_EQ(m.find("audio.shift_w").shape(), (Shape{2}));
  EXPECT_EQ(m.find("fc1.weight").shape(), (Shape{8, 3 * 6 + 2 * 4}));
  EXPECT_EQ(m.find("logits.weight").shape(), (Shape{5, 7}));
}

// 57,807,830: derived by hand in docs/video/sequence-models.md and by
// tests/video/golden/sequence_param_counts.py (PyTorch).
// Built from the shipped config through the registry.
TEST(AttentionCluster, ReferenceParameterCount) {
  expect_shipped_reference("attention_cluster.yaml", 57807830, "AttentionCluster");
}

// Each unit's output has norm 1/sqrt(units), so a cluster has unit norm; a single real frame
// gets all the attention, so the unit's output is that frame shifted and normalised.
TEST(AttentionCluster, ShiftingAttentionNormalisesEachUnit) {
  Generator gen(2);
  ShiftingAttention att(4, 3, &gen);
  const Tensor x = randn({2, 5, 4}, &gen);
  const Tensor valid = lt(arange(5).reshape({1, 5}), tensor<int64_t>({5, 1}).reshape({2, 1}));
  NoGradGuard ng;
  const Tensor out = att.pool(x, valid);
  ASSERT_EQ(out.shape(), (Shape{2, 12}));
  const auto v = out.to_vector<float>();
  const auto w = att.shift_w.to_vector<float>(), b = att.shift_b.to_vector<float>();
  const auto xv = x.to_vector<float>();
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t k = 0; k < 3; ++k) {
      double norm = 0;
      for (int64_t j = 0; j < 4; ++j) norm += v[n * 12 + k * 4 + j] * v[n * 12 + k * 4 + j];
      EXPECT_NEAR(std::sqrt(norm), 1 / std::sqrt(3.0), 1e-5);
    }
  // Video 1 has one real frame: unit k gives (w_k x_0 + b_k) / |w_k x_0 + b_k| / sqrt(3).
  for (int64_t k = 0; k < 3; ++k) {
    double s[4], norm = 0;
    for (int64_t j = 0; j < 4; ++j) {
      s[j] = w[k] * xv[(1 * 5 + 0) * 4 + j] + b[k];
      norm += s[j] * s[j];
    }
    for (int64_t j = 0; j < 4; ++j)
      EXPECT_NEAR(v[12 + k * 4 + j], s[j] / std::sqrt(norm) / std::sqrt(3.0), 1e-5);
  }
}

TEST(AttentionCluster, PaddingDoesNotChangeTheOutput) {
  Generator gen(3);
  AttentionCluster m(tiny(), &gen);
  expect_padding_invariant(m);
  m.eval();
  expect_padding_invariant(m);
}

TEST(AttentionCluster, FrameOrderDoesNotMatter) {
  Generator gen(4);
  AttentionCluster m(tiny(), &gen);
  m.eval();
  EXPECT_LT(order_sensitivity(m), 1e-5);
}

TEST(AttentionCluster, BadOptionsAreErrors) {
  Generator gen(5);
  AttentionClusterOptions o = tiny();
  o.cluster_nums = {3};
  EXPECT_THROW(AttentionCluster(o, &gen), oar::Error);
  o = tiny();
  o.cluster_nums = {3, 0};
  EXPECT_THROW(AttentionCluster(o, &gen), oar::Error);
  AttentionCluster m(tiny(), &gen);
  const TinyBatch b = tiny_batch(2);
  EXPECT_THROW(m.forward(b.rgb, b.audio, tensor<int64_t>({6, 2})), oar::Error);
  EXPECT_THROW(m.forward({b.rgb}, b.lengths), oar::Error);
}

TEST(AttentionCluster, GradientsMatchFiniteDifferences) {
  Generator gen(6);
  AttentionCluster m(tiny(), &gen);
  m.eval();
  const TinyBatch b = tiny_batch(7, {3, 1, 2});
  const Tensor rgb = b.rgb.narrow(1, 0, 3).contiguous().set_requires_grad();
  const Tensor audio = b.audio.narrow(1, 0, 3).contiguous().set_requires_grad();
  auto f = [&](const std::vector<Tensor>& in) { return m.forward(in[0], in[1], b.lengths); };
  EXPECT_GRADCHECK(
      f, (std::vector<Tensor>{rgb, audio, m.find("rgb.scores.weight"), m.find("rgb.shift_w"),
                              m.find("audio.shift_b"), m.find("fc1.bias")}));
}

TEST(AttentionCluster, AdamLowersTheLossOnAFixedBatch) {
  Generator gen(8);
  AttentionCluster m(tiny(0.5), &gen);
  Generator drop(9);
  m.set_generator(&drop);
  const auto [first, last] = fit_tiny_batch(m, 60, 1e-2);
  EXPECT_LT(last, 0.5 * first) << "first " << first << " last " << last;
}

TEST(AttentionCluster, ConfigMistakesAreConfigErrors) {
  try {
    from_shipped_config("attention_cluster.yaml", {"model.cluster_nums=[32]"});
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("cluster_nums"), std::string::npos) << what;
    EXPECT_NE(what.find("one entry per modality"), std::string::npos) << what;
  }
  EXPECT_THROW(from_shipped_config("attention_cluster.yaml", {"model.feature_dims=[1024]"}),
               ConfigError);
}

// The same tiny model in PyTorch (tests/video/golden/sequence_golden.py), same weights and inputs.
TEST(AttentionCluster, MatchesAnIndependentPyTorchImplementation) {
  Generator gen(1);
  AttentionCluster m(tiny(0.5), &gen);
  EXPECT_LT(golden_difference(m, "attention_cluster"), 2e-5);
}

// One modality: forward(x) means every frame is real.
TEST(AttentionCluster, SingleModalityTakesAPlainTensor) {
  Generator gen(10);
  AttentionClusterOptions o = tiny();
  o.feature_names = {"rgb"};
  o.feature_dims = {6};
  o.cluster_nums = {3};
  AttentionCluster m(o, &gen);
  m.eval();
  const Tensor x = randn({2, 5, 6}, &gen);
  NoGradGuard ng;
  const Tensor out = m.forward(x);
  EXPECT_EQ(out.shape(), (Shape{2, 5}));
  EXPECT_EQ(max_abs_diff(out, m.forward(std::vector<Tensor>{x}, tensor<int64_t>({5, 5}))), 0.0);
  EXPECT_GT(max_abs_diff(out, m.forward(std::vector<Tensor>{x}, tensor<int64_t>({3, 5}))), 1e-4);
}
