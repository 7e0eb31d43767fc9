// The text metrics by name from the metric registry: prf (ids or scores), chunk_f1 with its
// scheme check, ranking and masked_lm, with the values they compute and their config errors.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/config/config.h"
#include "metrics/registry.h"
#include "metrics/text.h"

namespace oar::metrics {
namespace {

double value(const std::vector<std::pair<std::string, double>>& v, const std::string& k) {
  for (const auto& [name, x] : v)
    if (name == k) return x;
  ADD_FAILURE() << "no " << k;
  return NAN;
}

std::unique_ptr<Metric> from_yaml(const std::string& yaml) {
  register_components();
  Config c = Config::from_string(yaml, "m.yaml");
  return make_metric(c, "metrics");
}

TEST(TextMetricRegistry, PrfFromIdsOrScores) {
  auto m = from_yaml("metrics: {name: prf, num_classes: 3, exclude: [2]}");
  Batch b;
  b.tensors["label"] = tensor(std::vector<int64_t>{0, 1, 1, 2}, {4});
  // argmax of the scores: 0, 1, 0, 2
  m->update({{"logits", tensor(std::vector<float>{5, 1, 0, 0, 3, 1, 2, 1, 0, 0, 0, 1}, {4, 3})}},
            b);
  auto v = m->compute();
  EXPECT_DOUBLE_EQ(value(v, "accuracy"), 0.75);
  // class 0: tp 1 fp 1 -> P 0.5 R 1; class 1: tp 1 fn 1 -> P 1 R 0.5; macro F1 = 2/3
  EXPECT_NEAR(value(v, "macro_f1"), 2.0 / 3, 1e-12);
  auto ids = from_yaml("metrics: {name: prf, num_classes: 3, pred_key: pred}");
  ids->update({{"pred", tensor(std::vector<int64_t>{0, 1, 0, 2}, {4})}}, b);
  EXPECT_DOUBLE_EQ(value(ids->compute(), "accuracy"), 0.75);
  EXPECT_THROW(from_yaml("metrics: {name: prf, num_classes: 3, exclude: [3]}"), ConfigError);
  EXPECT_THROW(from_yaml("metrics: {name: prf}"), ConfigError);
}

TEST(TextMetricRegistry, ChunkF1WithScheme) {
  auto m = from_yaml("metrics: {name: chunk_f1, scheme: BIO, labels: [O, B-PER, I-PER, B-LOC]}");
  Batch b;
  b.tensors["word_tags"] = tensor(std::vector<int64_t>{1, 2, 0, 3, -1}, {1, 5});
  // gold: PER [0,2), LOC [3,4); predicted: PER [0,1), LOC [3,4)
  m->update({{"word_pred", tensor(std::vector<int64_t>{1, 0, 0, 3, 0}, {1, 5})}}, b);
  auto v = m->compute();
  EXPECT_DOUBLE_EQ(value(v, "chunk_precision"), 0.5);
  EXPECT_DOUBLE_EQ(value(v, "chunk_f1"), 0.5);
  EXPECT_NO_THROW(from_yaml("metrics: {name: chunk_f1, labels: [O, S-X, E-X, B-X, I-X]}"));
  EXPECT_NO_THROW(
      from_yaml("metrics: {name: chunk_f1, scheme: BIOES, labels: [O, S-X, E-X, B-X, I-X]}"));
  EXPECT_THROW(from_yaml("metrics: {name: chunk_f1, scheme: BIO, labels: [O, S-X, B-X]}"),
               ConfigError);
  EXPECT_THROW(from_yaml("metrics: {name: chunk_f1, scheme: BIOE, labels: [O]}"), ConfigError);
  EXPECT_THROW(from_yaml("metrics: {name: chunk_f1, labels: [O, X-PER]}"), ConfigError);
  EXPECT_THROW(check_tag_scheme({"O", "E-LOC"}, "IOB1"), Error);
}

TEST(TextMetricRegistry, RankingAndMaskedLm) {
  auto r = from_yaml("metrics: {name: ranking}");
  Batch b;
  b.tensors["label"] = tensor(std::vector<int64_t>{0, 1, 1, 0}, {4});
  b.tensors["group"] = tensor(std::vector<int64_t>{0, 0, 1, 1}, {4});
  r->update({{"score", tensor(std::vector<float>{0.9f, 0.1f, 0.8f, 0.2f}, {4})}}, b);
  EXPECT_DOUBLE_EQ(value(r->compute(), "mrr"), (0.5 + 1.0) / 2);

  auto m = from_yaml("metrics: {name: masked_lm, logits_key: lm}");
  Batch mb;
  mb.tensors["mlm_labels"] = tensor(std::vector<int64_t>{1}, {1});
  m->update({{"lm", tensor(std::vector<float>{0, 0}, {1, 2})}}, mb);
  EXPECT_DOUBLE_EQ(value(m->compute(), "masked_accuracy"), 0.0);  // a tie goes to id 0
  EXPECT_NEAR(value(m->compute(), "perplexity"), 2.0, 1e-12);
  EXPECT_THROW(m->update({{"logits", tensor(std::vector<float>{0, 0}, {1, 2})}}, mb), Error);
  for (const char* name : {"prf", "chunk_f1", "ranking", "masked_lm"})
    EXPECT_TRUE(metrics().contains(name)) << name;
  EXPECT_THROW(from_yaml("metrics: {name: chunk_f1x}"), ConfigError);
}

}  // namespace
}  // namespace oar::metrics
