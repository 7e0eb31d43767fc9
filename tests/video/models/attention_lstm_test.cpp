// Attention LSTM: shapes, the reference parameter count, padding invariance, sensitivity to
// frame order, finite-difference gradients and a short fit.
#include "video/models/attention_lstm.h"

#include <gtest/gtest.h>

#include "engine/nn.h"
#include "engine/ops.h"
#include "engine/train/batch.h"
#include "tests/support/gradcheck.h"
#include "tests/video/models/sequence_checks.h"

using namespace oar;
using namespace oar::video;
using namespace oar::video::seqcheck;

namespace {

AttentionLstmOptions tiny(double drop_rate = 0.0) {
  AttentionLstmOptions o;
  o.feature_dims = {6, 4};
  o.num_classes = 5;
  o.drop_rate = drop_rate;
  o.embedding_size = 4;
  o.lstm_size = 3;
  o.fc_sizes = {8, 6};
  return o;
}

}  // namespace

TEST(AttentionLstm, OutputShapeAndStateNames) {
  Generator gen(1);
  AttentionLstm m(tiny(), &gen);
  const TinyBatch b = tiny_batch(2);
  EXPECT_EQ(m.forward(b.rgb, b.audio, b.lengths).shape(), (Shape{3, 5}));
  const Tensor w = m.find("rgb.lstm.weight_hh_l0_reverse");
  ASSERT_TRUE(w.defined());
  EXPECT_EQ(w.shape(), (Shape{12, 3}));
  EXPECT_TRUE(m.find("audio.attention.weight").defined());
  EXPECT_EQ(m.find("fc1.weight").shape(), (Shape{8, 12}));  // 2 modalities x 2 directions x 3
  EXPECT_EQ(m.find("logits.weight").shape(), (Shape{5, 6}));
}

// 108,737,304: derived by hand in docs/video/sequence-models.md and by
// tests/video/golden/sequence_param_counts.py (PyTorch).
// Built from the shipped config through the registry.
TEST(AttentionLstm, ReferenceParameterCount) {
  expect_shipped_reference("attention_lstm.yaml", 108737304, "AttentionLstm");
}

TEST(AttentionLstm, PaddingDoesNotChangeTheOutput) {
  Generator gen(3);
  AttentionLstm m(tiny(), &gen);
  expect_padding_invariant(m);
  m.eval();
  expect_padding_invariant(m);
}

TEST(AttentionLstm, FrameOrderMatters) {
  Generator gen(4);
  AttentionLstm m(tiny(), &gen);
  m.eval();
  EXPECT_GT(order_sensitivity(m), 1e-3);
}

TEST(AttentionLstm, ReadsAReaderBatch) {
  Generator gen(1);
  AttentionLstm m(tiny(), &gen);
  m.eval();
  const TinyBatch b = tiny_batch(2);
  Batch batch;
  batch.tensors = {{"rgb", b.rgb}, {"audio", b.audio}, {"length", b.lengths}};
  batch.size = 3;
  NoGradGuard ng;
  EXPECT_EQ(max_abs_diff(m.forward(batch), m.forward(b.rgb, b.audio, b.lengths)), 0.0);
  batch.tensors.erase("audio");
  try {
    m.forward(batch);
    FAIL() << "no error";
  } catch (const oar::Error& e) {
    EXPECT_NE(std::string(e.what()).find("'audio'"), std::string::npos) << e.what();
  }
}

TEST(AttentionLstm, BadInputsAreErrorsNamingTheArgument) {
  Generator gen(5);
  AttentionLstm m(tiny(), &gen);
  const TinyBatch b = tiny_batch(2);
  EXPECT_THROW(m.forward(b.rgb, b.audio, tensor<int64_t>({6, 0, 2})), oar::Error);  // empty video
  EXPECT_THROW(m.forward(b.rgb, b.audio, tensor<int64_t>({7, 1, 2})), oar::Error);  // past T
  EXPECT_THROW(m.forward(b.audio, b.rgb, b.lengths), oar::Error);                   // swapped dims
  EXPECT_THROW(m.forward(b.rgb), oar::Error);  // two modalities need lengths
  try {
    m.forward(b.rgb, b.audio, tensor<int64_t>({2, 2}));
    FAIL();
  } catch (const oar::Error& e) {
    EXPECT_NE(std::string(e.what()).find("lengths"), std::string::npos) << e.what();
  }
  AttentionLstmOptions o = tiny();
  o.feature_dims = {6};
  EXPECT_THROW(AttentionLstm(o, &gen), oar::Error);
}

TEST(AttentionLstm, GradientsMatchFiniteDifferences) {
  Generator gen(6);
  AttentionLstm m(tiny(), &gen);
  m.eval();
  const TinyBatch b = tiny_batch(7, {3, 1, 2});
  const Tensor rgb = b.rgb.narrow(1, 0, 3).contiguous().set_requires_grad();
  const Tensor audio = b.audio.narrow(1, 0, 3).contiguous().set_requires_grad();
  auto f = [&](const std::vector<Tensor>& in) { return m.forward(in[0], in[1], b.lengths); };
  EXPECT_GRADCHECK(f, (std::vector<Tensor>{rgb, audio, m.find("rgb.embedding.weight"),
                                           m.find("audio.lstm.weight_ih_l0_reverse"),
                                           m.find("rgb.attention.weight"), m.find("fc1.bias")}));
}

TEST(AttentionLstm, AdamLowersTheLossOnAFixedBatch) {
  Generator gen(8);
  AttentionLstm m(tiny(0.5), &gen);
  Generator drop(9);
  m.set_generator(&drop);
  const auto [first, last] = fit_tiny_batch(m, 60, 1e-2);
  EXPECT_LT(last, 0.5 * first) << "first " << first << " last " << last;
}

TEST(AttentionLstm, ConfigMistakesAreConfigErrors) {
  EXPECT_THROW(from_shipped_config("attention_lstm.yaml", {"model.lstm_sise=3"}), ConfigError);
  EXPECT_THROW(from_shipped_config("attention_lstm.yaml", {"model.feature_dims=[1024]"}),
               ConfigError);
}

// The same tiny model in PyTorch (tests/video/golden/sequence_golden.py), same weights and inputs.
TEST(AttentionLstm, MatchesAnIndependentPyTorchImplementation) {
  Generator gen(1);
  AttentionLstm m(tiny(0.5), &gen);
  EXPECT_LT(golden_difference(m, "attention_lstm"), 2e-5);
}
