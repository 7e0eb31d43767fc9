// BertModel without downloaded weights: configs (BERT, ERNIE 1.0/2.0), HF name mapping on load,
// padding invariance, and the text-classification head's gradients through the encoder.
#include "nlp/models/bert.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "engine/autograd/grad_mode.h"
#include "engine/io/safetensors.h"
#include "engine/ops.h"
#include "nlp/readers/tsv.h"
#include "nlp/tasks/text_classification.h"

namespace oar::nlp {
namespace {

BertConfig tiny(const std::string& act = "gelu") {
  BertConfig c;
  c.vocab_size = 50;
  c.hidden_size = 16;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.intermediate_size = 32;
  c.max_position_embeddings = 20;
  c.hidden_act = act;
  return c;
}

double max_diff(const Tensor& a, const Tensor& b) {
  return amax(abs(sub(a, b))).item<double>();
}

TEST(BertConfigTest, ReadsHfAndErnieKeys) {
  const Json j = Json::parse(R"({"vocab_size": 18000, "hidden_size": 768, "num_hidden_layers": 12,
    "num_attention_heads": 12, "hidden_act": "relu", "max_position_embeddings": 513,
    "sent_type_vocab_size": 4, "use_task_id": true, "task_type_vocab_size": 16,
    "layer_norm_eps": 1e-5, "initializer_range": 0.02})");
  const BertConfig c = BertConfig::from_json(j);
  EXPECT_EQ(c.intermediate_size, 3072);  // ERNIE 1.0 has no key: 4 * hidden
  EXPECT_EQ(c.type_vocab_size, 4);
  EXPECT_TRUE(c.use_task_id);
  EXPECT_EQ(c.task_type_vocab_size, 16);
  EXPECT_DOUBLE_EQ(c.layer_norm_eps, 1e-5);
  const BertConfig e = BertConfig::ernie_1_0();
  EXPECT_EQ(e.hidden_act, "relu");
  EXPECT_EQ(e.vocab_size, 18000);
  EXPECT_EQ(e.max_position_embeddings, 513);
  EXPECT_DOUBLE_EQ(e.layer_norm_eps, 1e-5);
  EXPECT_THROW(BertConfig::from_json(Json::parse(R"({"hidden_act": "swish"})"), "x.json"), Error);
  EXPECT_THROW(BertConfig::from_json(Json::parse(R"({"hidden_size": 10})"), "x.json"), Error);
}

TEST(BertModelTest, HfStateNamesAndTaskEmbedding) {
  Generator g(1);
  BertConfig c = tiny();
  c.use_task_id = true;
  BertModel m(c, &g);
  const auto sd = m.state_dict();
  auto has = [&](const std::string& n) {
    for (const auto& [k, v] : sd)
      if (k == n) return true;
    return false;
  };
  for (const char* n :
       {"embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
        "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight",
        "embeddings.task_type_embeddings.weight", "encoder.layer.1.attention.self.query.weight",
        "encoder.layer.1.attention.self.value.bias",
        "encoder.layer.0.attention.output.dense.weight",
        "encoder.layer.0.attention.output.LayerNorm.bias",
        "encoder.layer.0.intermediate.dense.weight", "encoder.layer.0.output.dense.weight",
        "encoder.layer.0.output.LayerNorm.weight", "pooler.dense.weight"})
    EXPECT_TRUE(has(n)) << n;
  EXPECT_EQ(sd.size(), 4u + 2u + 16u * 2u + 2u);  // embeddings, LN, 2 layers, pooler
}

TEST(BertModelTest, LoadsPrefixedGammaBetaCheckpoint) {
  Generator g1(1), g2(2);
  BertModel a(tiny("relu"), &g1), b(tiny("relu"), &g2);
  std::vector<std::pair<std::string, Tensor>> renamed;
  for (auto [k, v] : a.state_dict()) {
    std::string n = "bert." + k;
    if (n.size() > 16 && n.ends_with("LayerNorm.weight")) n = n.substr(0, n.size() - 6) + "gamma";
    if (n.size() > 14 && n.ends_with("LayerNorm.bias")) n = n.substr(0, n.size() - 4) + "beta";
    renamed.emplace_back(n, v);
  }
  renamed.emplace_back("bert.embeddings.position_ids", arange(20).reshape({1, 20}));
  renamed.emplace_back("cls.seq_relationship.weight", zeros({2, 16}));
  const std::string path =
      (std::filesystem::temp_directory_path() / "oar_bert_test.safetensors").string();
  io::write_safetensors(path, renamed);
  load_hf_bert_weights(b, path);
  std::filesystem::remove(path);
  a.eval();
  b.eval();
  NoGradGuard ng;
  const Tensor ids = tensor<int64_t>({2, 7, 9, 3, 4, 5}, {2, 3});
  EXPECT_EQ(max_diff(a.forward(ids), b.forward(ids)), 0.0);
}

TEST(BertModelTest, PaddingDoesNotChangeRealTokens) {
  Generator g(3);
  BertModel m(tiny(), &g);
  m.eval();
  NoGradGuard ng;
  const BertOutput alone = m.encode(tensor<int64_t>({1, 7, 8, 2}, {1, 4}),
                                    tensor<int64_t>({0, 0, 1, 1}, {1, 4}), Tensor());
  const BertOutput padded = m.encode(tensor<int64_t>({1, 7, 8, 2, 0, 0, 1, 9, 2, 0, 0, 0}, {2, 6}),
                                     tensor<int64_t>({0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0}, {2, 6}),
                                     tensor<int64_t>({1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 0}, {2, 6}));
  EXPECT_LT(max_diff(alone.last_hidden_state.select(0, 0),
                     padded.last_hidden_state.select(0, 0).slice(0, 0, 4)),
            1e-5);
  EXPECT_LT(max_diff(alone.pooled.select(0, 0), padded.pooled.select(0, 0)), 1e-5);
}

TEST(TextClassificationTest, TsvBatchesTrainTheHeadAndEncoder) {
  const std::string dir = std::filesystem::temp_directory_path() / "oar_tsv_test";
  std::filesystem::create_directories(dir);
  {
    std::ofstream f(dir + "/a.tsv");
    f << "label\ttext_a\n1\tthe film is great .\n0\tdull and long\n1\tloved it\n";
  }
  auto tok = std::make_shared<BertTokenizer>(
      BertTokenizer::from_file(std::string(OAR_SOURCE_DIR) + "/tests/nlp/data/minilm_vocab.txt"));
  TsvTextDataset ds(dir + "/a.tsv", tok, TsvOptions{});
  ASSERT_EQ(ds.size(), 3);
  Generator rng(0);
  std::vector<readers::Example> ex{ds.get(0, rng), ds.get(1, rng), ds.get(2, rng)};
  Batch b = ds.collate(ex);
  ASSERT_EQ(b["input_ids"].shape(), (Shape{3, 7}));  // [CLS] the film is great . [SEP]
  EXPECT_EQ(b["attention_mask"].to_vector<int64_t>(),
            (std::vector<int64_t>{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 0}));
  EXPECT_EQ(b["input_ids"].select(0, 2).to_vector<int64_t>(),
            (std::vector<int64_t>{101, 3866, 2009, 102, 0, 0, 0}));
  EXPECT_EQ(b["label"].to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 1}));

  BertConfig c = tiny();
  c.vocab_size = 30522;
  Generator g(4);
  auto model = std::make_shared<BertModel>(c, &g);
  TextClassificationTask task(model, TextClassificationOptions{});
  Tensor loss = task.loss(task.forward(b), b);
  EXPECT_NEAR(loss.item<double>(), std::log(2.0), 0.05);  // small init: near-uniform logits
  loss.backward();
  EXPECT_TRUE(model->find("classifier.weight").grad().defined());
  const Tensor g_q = model->find("encoder.layer.0.attention.self.query.weight").grad();
  ASSERT_TRUE(g_q.defined());
  EXPECT_GT(amax(abs(g_q)).item<double>(), 0.0);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace oar::nlp
