// Masked-LM: the head's gradients by finite differences (the tied decoder included), the tie
// itself, loading Hugging Face cls.predictions.* names, the loss and metric by hand, and a tiny
// BERT whose MLM loss falls over a few steps on masked text.
#include "nlp/tasks/masked_lm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "engine/io/safetensors.h"
#include "engine/ops.h"
#include "metrics/text.h"
#include "nlp/masking/masked_text.h"
#include "tests/support/gradcheck.h"
#include "tiny_bert.h"

namespace oar::nlp {
namespace {

std::shared_ptr<BertModel> small_bert(uint64_t seed = 3) {
  BertConfig c;
  c.vocab_size = 13;
  c.hidden_size = 8;
  c.num_hidden_layers = 1;
  c.num_attention_heads = 2;
  c.intermediate_size = 16;
  c.max_position_embeddings = 8;
  c.hidden_dropout_prob = 0;
  c.attention_probs_dropout_prob = 0;
  Generator g(seed);
  return std::make_shared<BertModel>(c, &g);
}

TEST(MaskedLmTest, HeadGradientsAndTie) {
  auto bert = small_bert();
  MaskedLmTask task(bert, {});
  BertMlmHead& head = task.head();
  Tensor& emb = bert->embeddings->word_embeddings->weight;
  EXPECT_EQ(head.decoder_weight.impl(), emb.impl());  // tied, not a copy
  // The tie is not a second parameter: the head adds transform.dense, transform.LayerNorm, bias.
  std::map<std::string, Tensor> state;
  for (const auto& [k, t] : bert->state_dict()) state[k] = t;
  EXPECT_TRUE(state.count("cls.predictions.transform.dense.weight"));
  EXPECT_TRUE(state.count("cls.predictions.transform.LayerNorm.bias"));
  EXPECT_TRUE(state.count("cls.predictions.bias"));
  EXPECT_FALSE(state.count("cls.predictions.decoder.weight"));
  {
    NoGradGuard ng;  // non-trivial LayerNorm and bias values for the check
    Generator g(5);
    head.LayerNorm->weight.copy_(rand({8}, &g, 0.5, 1.5));
    head.LayerNorm->bias.copy_(rand({8}, &g, -0.5, 0.5));
    head.bias.copy_(rand({13}, &g, -0.5, 0.5));
  }
  Tensor x = testing::rand_input({3, 8}, 11);
  auto f = [&](const std::vector<Tensor>& in) { return head.forward(in[0]); };
  EXPECT_GRADCHECK(
      f, (std::vector<Tensor>{x, head.dense->weight, head.dense->bias, head.LayerNorm->weight,
                              head.LayerNorm->bias, head.bias, emb}));

  // Through the whole task: the loss's gradient on the word embeddings sums the input and the
  // tied output uses.
  Batch b;
  b.size = 2;
  b.tensors["input_ids"] = tensor(std::vector<int64_t>{2, 4, 7, 3, 2, 9, 4, 3}, {2, 4});
  b.tensors["attention_mask"] = tensor(std::vector<int64_t>{1, 1, 1, 1, 1, 1, 1, 1}, {2, 4});
  b.tensors["mlm_positions"] = tensor(std::vector<int64_t>{1, 6}, {2});
  b.tensors["mlm_labels"] = tensor(std::vector<int64_t>{5, 11}, {2});
  auto loss = [&](const std::vector<Tensor>&) { return task.loss(task.forward(b), b); };
  EXPECT_GRADCHECK(loss, (std::vector<Tensor>{emb}));
}

TEST(MaskedLmTest, LossMetricAndHfHead) {
  auto bert = small_bert();
  MaskedLmTask task(bert, {});
  Batch b;
  b.size = 1;
  b.tensors["mlm_labels"] = tensor(std::vector<int64_t>{0, 2}, {2});
  Outputs out;
  out["mlm_logits"] = tensor(std::vector<float>{2, 0, 0, 0, 0, 1}, {2, 3});
  const double l0 = std::log(std::exp(2.0) + 2) - 2, l1 = std::log(2 + std::exp(1.0)) - 1;
  EXPECT_NEAR(task.loss(out, b).item<double>(), (l0 + l1) / 2, 1e-6);
  auto ms = task.metrics();
  ASSERT_EQ(ms.size(), 1u);
  ms[0]->update(out, b);
  auto v = ms[0]->compute();
  EXPECT_EQ(v[0].first, "masked_accuracy");
  EXPECT_DOUBLE_EQ(v[0].second, 1.0);
  EXPECT_NEAR(v[1].second, std::exp((l0 + l1) / 2), 1e-6);  // perplexity
  out["mlm_logits"] = tensor(std::vector<float>{0, 3, 0}, {1, 3});
  b.tensors["mlm_labels"] = tensor(std::vector<int64_t>{0}, {1});
  ms[0]->update(out, b);
  EXPECT_NEAR(ms[0]->compute()[0].second, 2.0 / 3, 1e-12);
  metrics::MaskedLmMetric merged;
  merged.load_state(ms[0]->state());
  EXPECT_EQ(merged.compute(), ms[0]->compute());

  // A checkpoint with HF's names (old gamma/beta spelling, decoder.bias for bias) loads.
  test::TinyVocabDir d("mlmhead");
  Generator g(9);
  const Tensor w = rand({8, 8}, &g), gamma = rand({8}, &g), bias = rand({13}, &g);
  const std::string file = (d.dir / "model.safetensors").string();
  io::write_safetensors(file, {{"bert.embeddings.word_embeddings.weight", rand({13, 8}, &g)},
                               {"cls.predictions.transform.dense.weight", w},
                               {"cls.predictions.transform.dense.bias", rand({8}, &g)},
                               {"cls.predictions.transform.LayerNorm.gamma", gamma},
                               {"cls.predictions.transform.LayerNorm.beta", rand({8}, &g)},
                               {"cls.predictions.decoder.weight", rand({13, 8}, &g)},
                               {"cls.predictions.decoder.bias", bias}});
  EXPECT_TRUE(load_hf_mlm_head(task.head(), file));
  EXPECT_EQ(task.head().dense->weight.to_vector<float>(), w.to_vector<float>());
  EXPECT_EQ(task.head().LayerNorm->weight.to_vector<float>(), gamma.to_vector<float>());
  EXPECT_EQ(task.head().bias.to_vector<float>(), bias.to_vector<float>());
  io::write_safetensors(file, {{"encoder.x", rand({2}, &g)}});
  EXPECT_FALSE(load_hf_mlm_head(task.head(), file));
  io::write_safetensors(file, {{"cls.predictions.bias", rand({12}, &g)}});
  EXPECT_THROW(load_hf_mlm_head(task.head(), file), Error);  // wrong shape, parts missing
  EXPECT_THROW(MaskedLmTask(std::make_shared<nn::Linear>(2, 2), {}), Error);
}

TEST(MaskedLmTest, TinyBertLossFalls) {
  test::TinyVocabDir d("mlmtrain");
  MaskedTextOptions o;
  o.masking.mask_prob = 0.3;
  MaskedTextDataset ds(
      std::vector<std::string>{"the cat sat on the mat", "john lives in paris", "the dog runs fast",
                               "john works at acme", "the red cat is playing", "张三住在北京"},
      d.tokenizer(), o, "lines");
  std::vector<readers::Example> ex;
  Generator g(4);
  for (int64_t i = 0; i < ds.size(); ++i) ex.push_back(ds.get(i, g));
  Batch b = ds.collate(ex);
  ASSERT_GT(b["mlm_labels"].size(0), 3);
  MaskedLmTask task(test::tiny_bert(), {});
  const auto losses = test::train_steps(task, b, 30);
  EXPECT_GT(losses.front(), 3.0);  // about log(53) at the start
  EXPECT_LT(losses.back(), 0.5 * losses.front());
  // predict: one record per line, each masked token with its top ids.
  NoGradGuard ng;
  const auto recs = task.predict(task.forward(b), b);
  ASSERT_EQ(recs.size(), 6u);
  size_t masked = 0;
  for (const Json& r : recs) masked += r.at("masked").size();
  EXPECT_EQ(masked, static_cast<size_t>(b["mlm_labels"].size(0)));
  EXPECT_EQ(recs[0].at("masked").as_array()[0].at("top").size(), 5u);
}

}  // namespace
}  // namespace oar::nlp
