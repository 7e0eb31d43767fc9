// Text matching: query groups from both TSV layouts, the pairwise hinge and pointwise losses by
// hand, a tiny BERT that learns to rank, and per-query MRR/MAP.
#include "nlp/tasks/text_matching.h"

#include <gtest/gtest.h>

#include <cmath>

#include "engine/autograd/grad_mode.h"
#include "engine/ops.h"
#include "nlp/readers/query_groups.h"
#include "tests/support/gradcheck.h"
#include "tiny_bert.h"

namespace oar::nlp {
namespace {

Batch batch_of(const QueryGroupDataset& ds) {
  std::vector<readers::Example> ex;
  Generator g(0);
  for (int64_t i = 0; i < ds.size(); ++i) ex.push_back(ds.get(i, g));
  return ds.collate(ex);
}

const char* kGrouped =
    "qid\ttext_a\ttext_b\tlabel\n"
    "1\twho is john\tjohn lives in paris\t1\n"
    "2\twhat is red\tthe cat is red\t1\n"
    "1\twho is john\tthe dog runs fast\t0\n"
    "1\twho is john\tthe cat sat on the mat\t0\n"
    "2\twhat is red\tjohn works at acme\t0\n";

TEST(QueryGroupsTest, GroupsByQidAndReadsTriplets) {
  test::TinyVocabDir d("qg");
  QueryGroupDataset ds(d.write("dev.tsv", kGrouped), d.tokenizer(), {});
  ASSERT_EQ(ds.size(), 2);
  EXPECT_EQ(ds.group(0).qid, "1");
  ASSERT_EQ(ds.group(0).candidates.size(), 3u);
  EXPECT_EQ(ds.group(0).candidates[2].text_b, "the cat sat on the mat");
  EXPECT_EQ(ds.group(1).candidates[0].label, 1);
  Batch b = batch_of(ds);
  EXPECT_EQ(b.size, 2);
  EXPECT_EQ(b["group"].to_vector<int64_t>(), (std::vector<int64_t>{0, 0, 0, 1, 1}));
  EXPECT_EQ(b["label"].to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 0, 1, 0}));
  EXPECT_EQ(b["token_type_ids"].select(0, 0).to_vector<int64_t>()[5],
            1);  // [CLS] who is john [SEP] john

  QueryGroupDataset tr(d.write("train.tsv",
                               "text_a\ttext_pos\ttext_neg\nwho is john\tjohn lives in paris\tthe "
                               "dog runs fast\n"),
                       d.tokenizer(), {});
  ASSERT_EQ(tr.size(), 1);
  EXPECT_EQ(tr.group(0).candidates[0].label, 1);
  EXPECT_EQ(tr.group(0).candidates[1].label, 0);
  EXPECT_THROW(QueryGroupDataset(d.write("bad.tsv", "query\tdoc\nq\td\n"), d.tokenizer(), {}),
               Error);
  EXPECT_THROW(QueryGroupDataset(d.write("bad2.tsv", "text_a\ttext_b\tlabel\nq\td\tyes\n"),
                                 d.tokenizer(), {}),
               Error);
}

TEST(TextMatchingTest, HingeLossByHand) {
  TextMatchingOptions o;
  o.margin = 0.5;
  TextMatchingTask task(test::tiny_bert(), o);
  Batch b;
  b.tensors["label"] = tensor(std::vector<int64_t>{1, 0, 0, 0, 1}, {5});
  b.tensors["group"] = tensor(std::vector<int64_t>{0, 0, 0, 1, 1}, {5});
  Outputs out;
  out["score"] = tensor(std::vector<float>{0.9f, 0.2f, 0.7f, 0.6f, 0.3f}, {5});
  // pairs (0,1): 0.5-0.7 -> 0; (0,2): 0.5-0.2 = 0.3; (4,3): 0.5+0.3 = 0.8 -> mean 11/30
  EXPECT_NEAR(task.loss(out, b).item<double>(), 1.1 / 3.0, 1e-6);
  b.tensors["label"] = tensor(std::vector<int64_t>{0, 0, 0, 0, 0}, {5});
  EXPECT_EQ(task.loss(out, b).item<double>(), 0.0);
  o.margin = 0;
  EXPECT_THROW(TextMatchingTask(test::tiny_bert(), o), Error);

  // pointwise: binary cross entropy of the logits, (log(1 + e^0) + log(1 + e^2)) / 2
  o.mode = TextMatchingOptions::Mode::pointwise;
  TextMatchingTask point(test::tiny_bert(), o);
  Batch pb;
  pb.tensors["label"] = tensor(std::vector<int64_t>{1, 0}, {2});
  pb.tensors["group"] = tensor(std::vector<int64_t>{0, 0}, {2});
  Outputs po;
  po["logit"] = tensor(std::vector<float>{0.f, 2.f}, {2});
  EXPECT_NEAR(point.loss(po, pb).item<double>(), (std::log(2.0) + std::log1p(std::exp(2.0))) / 2,
              1e-6);
  auto pf = [&](const std::vector<Tensor>& x) { return point.loss({{"logit", x[0]}}, pb); };
  const std::vector<Tensor> px{testing::rand_input({2}, 3)};
  EXPECT_GRADCHECK(pf, px);
}

TEST(TextMatchingTest, HingeGradient) {
  TextMatchingOptions o;
  o.margin = 0.5;
  TextMatchingTask task(test::tiny_bert(), o);
  Batch b;
  b.tensors["label"] = tensor(std::vector<int64_t>{1, 0, 0, 0, 1}, {5});
  b.tensors["group"] = tensor(std::vector<int64_t>{0, 0, 0, 1, 1}, {5});
  // scores away from the hinge's kink (margin - (pos - neg) = 0.5 - 0.8, 0.5 - 0.1, 0.5 + 0.3)
  Tensor s = tensor(std::vector<float>{0.9f, 0.1f, 0.8f, 0.6f, 0.3f}, {5});
  s.set_requires_grad();
  auto f = [&](const std::vector<Tensor>& x) { return task.loss({{"score", x[0]}}, b); };
  const std::vector<Tensor> xs{s};
  EXPECT_GRADCHECK(f, xs);
}

TEST(TextMatchingTest, LearnsToRank) {
  test::TinyVocabDir d("qg_train");
  QueryGroupDataset ds(d.write("dev.tsv", kGrouped), d.tokenizer(), {});
  Batch b = batch_of(ds);
  TextMatchingOptions o;
  o.dropout = 0;
  o.margin = 0.3;
  TextMatchingTask task(test::tiny_bert(3), o);
  EXPECT_TRUE(task.model().find("scorer.weight").defined());
  const auto losses = test::train_steps(task, b, 30);
  EXPECT_NEAR(losses.front(), 0.3, 0.05);  // scores start near sigmoid(0) for every pair
  EXPECT_LT(losses.back(), 0.5 * losses.front());

  NoGradGuard ng;
  const Outputs out = task.forward(b);
  auto m = task.metrics();
  m[0]->update(out, b);
  const auto v = m[0]->compute();
  EXPECT_DOUBLE_EQ(v[0].second, 1.0);  // mrr: the relevant candidate first in both queries
  EXPECT_DOUBLE_EQ(v[1].second, 1.0);
  EXPECT_DOUBLE_EQ(v[2].second, 2.0);
  const auto recs = task.predict(out, b);
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].at("qid").as_string(), "1");
  EXPECT_EQ(recs[0].at("ranking").as_array()[0].at("text_b").as_string(), "john lives in paris");
  EXPECT_EQ(recs[0].at("ranking").as_array().size(), 3u);
}

}  // namespace
}  // namespace oar::nlp
