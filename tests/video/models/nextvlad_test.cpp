// NeXtVLAD: shapes, the reference parameter count, padding invariance (batch statistics over
// real frames only), invariance to frame order, finite-difference gradients and a short fit.
#include "video/models/nextvlad.h"

#include <gtest/gtest.h>

#include "engine/core/error.h"
#include "engine/nn.h"
#include "engine/ops.h"
#include "tests/support/gradcheck.h"
#include "tests/video/models/sequence_checks.h"

using namespace oar;
using namespace oar::video;
using namespace oar::video::seqcheck;

namespace {

NeXtVladOptions tiny(double drop_rate = 0.0) {
  NeXtVladOptions o;
  o.feature_dims = {6, 4};
  o.num_classes = 5;
  o.drop_rate = drop_rate;
  o.cluster_size = 3;
  o.groups = 2;
  o.expansion = 2;
  o.hidden_size = 8;
  o.gating_reduction = 4;
  return o;
}

}  // namespace

TEST(NeXtVlad, OutputShapeAndStateNames) {
  Generator gen(1);
  NeXtVlad m(tiny(), &gen);
  const TinyBatch b = tiny_batch(2);
  EXPECT_EQ(m.forward(b.rgb, b.audio, b.lengths).shape(), (Shape{3, 5}));
  // rgb: expanded to 12, 2 groups of 6, 3 clusters -> VLAD of 18; audio: 2 groups of 4 -> 12.
  EXPECT_EQ(m.find("rgb.cluster_weights").shape(), (Shape{6, 12}));
  EXPECT_EQ(m.find("rgb.centers").shape(), (Shape{6, 3}));
  EXPECT_EQ(m.find("audio.vlad_bn.running_mean").shape(), (Shape{12}));
  EXPECT_EQ(m.find("hidden.weight").shape(), (Shape{8, 18 + 12}));
  EXPECT_EQ(m.find("gate1.weight").shape(), (Shape{2, 8}));
  EXPECT_EQ(m.find("logits.weight").shape(), (Shape{5, 8}));
}

// 89,088,550: derived by hand in docs/video/sequence-models.md and by
// tests/video/golden/sequence_param_counts.py (PyTorch).
// Built from the shipped config through the registry.
TEST(NeXtVlad, ReferenceParameterCount) {
  expect_shipped_reference("nextvlad.yaml", 89088550, "NeXtVlad");
}

TEST(NeXtVlad, PaddingDoesNotChangeTheOutput) {
  Generator gen(3);
  NeXtVlad m(tiny(), &gen);
  expect_padding_invariant(m);  // training mode: batch statistics over real frames only
  m.eval();
  expect_padding_invariant(m);
}

TEST(NeXtVlad, FrameOrderDoesNotMatter) {
  Generator gen(4);
  NeXtVlad m(tiny(), &gen);
  EXPECT_LT(order_sensitivity(m), 1e-4);  // training mode
  m.eval();
  EXPECT_LT(order_sensitivity(m), 1e-5);
}

TEST(NeXtVlad, BadOptionsAreErrors) {
  Generator gen(5);
  NeXtVladOptions o = tiny();
  o.groups = 5;  // 2 x 6 = 12 is not divisible by 5
  EXPECT_THROW(NeXtVlad(o, &gen), oar::Error);
  o = tiny();
  o.gating_reduction = 16;
  EXPECT_THROW(NeXtVlad(o, &gen), oar::Error);
  NeXtVlad m(tiny(), &gen);
  const TinyBatch b = tiny_batch(2);
  EXPECT_THROW(m.forward(b.rgb, b.audio, tensor<float>({6, 2, 4})), oar::Error);
}

TEST(NeXtVlad, GradientsMatchFiniteDifferences) {
  Generator gen(6);
  NeXtVlad m(tiny(), &gen);
  m.eval();
  // Non-trivial running statistics, so eval-mode BN is not the identity.
  {
    NoGradGuard ng;
    m.train();
    for (uint64_t s = 20; s < 23; ++s) {
      const TinyBatch warm = tiny_batch(s);
      m.forward(warm.rgb, warm.audio, warm.lengths);
    }
    m.eval();
  }
  const TinyBatch b = tiny_batch(7, {3, 1, 2});
  const Tensor rgb = b.rgb.narrow(1, 0, 3).contiguous().set_requires_grad();
  const Tensor audio = b.audio.narrow(1, 0, 3).contiguous().set_requires_grad();
  auto f = [&](const std::vector<Tensor>& in) { return m.forward(in[0], in[1], b.lengths); };
  EXPECT_GRADCHECK(
      f, (std::vector<Tensor>{rgb, audio, m.find("rgb.cluster_weights"), m.find("rgb.centers"),
                              m.find("audio.expand.weight"), m.find("gate1.weight")}));
}

// Training mode: the gradient also flows through the batch statistics of the four BNs.
TEST(NeXtVlad, GradientsMatchFiniteDifferencesInTraining) {
  Generator gen(16);
  NeXtVladOptions o = tiny();
  NeXtVlad m(o, &gen);
  const TinyBatch b = tiny_batch(17, {3, 1, 2, 3});
  const Tensor rgb = b.rgb.narrow(1, 0, 3).contiguous().set_requires_grad();
  auto f = [&](const std::vector<Tensor>& in) {
    return m.forward(in[0], b.audio.narrow(1, 0, 3), b.lengths);
  };
  EXPECT_GRADCHECK(f, (std::vector<Tensor>{rgb, m.find("rgb.group_attention.weight")}));
}

TEST(NeXtVlad, AdamLowersTheLossOnAFixedBatch) {
  Generator gen(8);
  NeXtVlad m(tiny(0.5), &gen);
  Generator drop(9);
  m.set_generator(&drop);
  const auto [first, last] = fit_tiny_batch(m, 60, 1e-2);
  EXPECT_LT(last, 0.5 * first) << "first " << first << " last " << last;
}

TEST(NeXtVlad, ConfigMistakesAreConfigErrors) {
  EXPECT_THROW(from_shipped_config("nextvlad.yaml", {"model.groups=7"}), ConfigError);
  EXPECT_THROW(from_shipped_config("nextvlad.yaml", {"model.feature_dims=[1024]"}), ConfigError);
}

// The same tiny model in PyTorch (tests/video/golden/sequence_golden.py), same weights and inputs.
TEST(NeXtVlad, MatchesAnIndependentPyTorchImplementation) {
  Generator gen(1);
  NeXtVlad m(tiny(0.5), &gen);
  EXPECT_LT(golden_difference(m, "nextvlad"), 2e-5);
}
