// Text metrics: hand-computed examples, then golden values from reference implementations
// (seqeval, scikit-learn, SQuAD's and CMRC 2018's evaluate scripts; made by
// scripts/golden/text_metrics_golden.py).
#include "metrics/text.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "engine/io/json.h"

namespace oar::metrics {
namespace {

std::vector<std::string> strings(const Json& j) {
  std::vector<std::string> out;
  for (const Json& x : j.as_array()) out.push_back(x.as_string());
  return out;
}

Json golden() {
  std::ifstream in(std::string(OAR_SOURCE_DIR) + "/tests/metrics/data/text_metrics_golden.json");
  std::stringstream ss;
  ss << in.rdbuf();
  return Json::parse(ss.str(), "text_metrics_golden.json");
}

TEST(ChunkTest, ConllevalRulesByHand) {
  // I- after O starts a chunk; a type change ends one; B after B ends one.
  const std::vector<std::string> t{"O", "I-PER", "I-PER", "B-LOC", "I-ORG", "B-LOC", "B-LOC", "O"};
  const std::vector<Chunk> want{
      {"PER", 1, 3}, {"LOC", 3, 4}, {"ORG", 4, 5}, {"LOC", 5, 6}, {"LOC", 6, 7}};
  EXPECT_EQ(extract_chunks(t), want);
  // BIOES: E and S close chunks; "E-X" after O opens one.
  const std::vector<std::string> u{"B-PER", "E-PER", "S-LOC", "E-LOC", "B-ORG", "I-ORG", "E-ORG"};
  const std::vector<Chunk> want_u{{"PER", 0, 2}, {"LOC", 2, 3}, {"LOC", 3, 4}, {"ORG", 4, 7}};
  EXPECT_EQ(extract_chunks(u), want_u);
  EXPECT_TRUE(extract_chunks({}).empty());
  EXPECT_THROW(extract_chunks({"X-PER"}), Error);

  // gold: PER [0,2), LOC [3,4); pred: PER [0,2), LOC [2,4) -> 1 correct of 2 and 2
  ChunkCounts c;
  c.add({"B-PER", "I-PER", "O", "B-LOC"}, {"B-PER", "I-PER", "B-LOC", "I-LOC"});
  EXPECT_DOUBLE_EQ(c.precision(), 0.5);
  EXPECT_DOUBLE_EQ(c.recall(), 0.5);
  EXPECT_DOUBLE_EQ(c.f1(), 0.5);
  EXPECT_THROW(c.add({"O"}, {"O", "O"}), Error);
}

TEST(ChunkTest, MatchesSeqeval) {
  const Json g = golden();
  for (const Json& c : g.at("chunks").as_array()) {
    ChunkCounts counts;
    const auto& gold = c.at("gold").as_array();
    const auto& pred = c.at("pred").as_array();
    for (size_t i = 0; i < gold.size(); ++i) {
      const auto gt = strings(gold[i]);
      std::vector<Chunk> want;
      for (const Json& ch : c.at("gold_chunks").as_array()[i].as_array())
        want.push_back(
            {ch.as_array()[0].as_string(), ch.as_array()[1].as_int(), ch.as_array()[2].as_int()});
      EXPECT_EQ(extract_chunks(gt), want) << gold[i].dump();
      counts.add(gt, strings(pred[i]));
    }
    EXPECT_NEAR(counts.precision(), c.at("precision").as_double(), 1e-12) << c.at("gold").dump();
    EXPECT_NEAR(counts.recall(), c.at("recall").as_double(), 1e-12);
    EXPECT_NEAR(counts.f1(), c.at("f1").as_double(), 1e-12);
  }
}

TEST(ChunkF1Test, MetricReadsPaddedIdRows) {
  ChunkF1 m({"B-PER", "I-PER", "O"});
  Batch b;
  // row 0: gold B I O (pred B I O); row 1: gold O B then padding (pred B B)
  b.tensors["word_tags"] = tensor(std::vector<int64_t>{0, 1, 2, 2, 0, -1}, {2, 3});
  Outputs o;
  o["word_pred"] = tensor(std::vector<int64_t>{0, 1, 2, 0, 0, 2}, {2, 3});
  m.update(o, b);
  const auto v = m.compute();  // gold 2 chunks, pred 3, correct 2
  EXPECT_DOUBLE_EQ(v[0].second, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(v[1].second, 1.0);
  EXPECT_DOUBLE_EQ(v[2].second, 0.8);
  ChunkF1 other({"B-PER", "I-PER", "O"});
  other.load_state(m.state());
  EXPECT_DOUBLE_EQ(other.compute()[2].second, 0.8);
  EXPECT_THROW(ChunkF1({"Q-PER"}), Error);
}

TEST(PrecisionRecallF1Test, ByHandAndAgainstScikitLearn) {
  // classes 0..2, exclude 0; labels 1 1 2 0, preds 1 2 2 1
  PrecisionRecallF1 m(3, {0});
  for (auto [y, p] :
       std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {1, 2}, {2, 2}, {0, 1}, {-1, 0}})
    m.add(y, p);
  const auto v = m.compute();
  EXPECT_DOUBLE_EQ(v[0].second, 0.5);  // accuracy 2/4 (the -1 label is ignored)
  // class 1: tp 1 fp 1 fn 1 -> p .5 r .5; class 2: tp 1 fp 1 fn 0 -> p .5 r 1
  EXPECT_DOUBLE_EQ(v[1].second, 0.5);
  EXPECT_DOUBLE_EQ(v[2].second, 0.75);
  EXPECT_DOUBLE_EQ(v[3].second, (0.5 + 2.0 / 3.0) / 2);
  EXPECT_DOUBLE_EQ(v[4].second, 0.5);        // micro: tp 2, fp 2
  EXPECT_DOUBLE_EQ(v[5].second, 2.0 / 3.0);  // fn 1
  EXPECT_THROW(m.add(3, 0), Error);
  const Json g = golden();
  for (const Json& c : g.at("prf").as_array()) {
    std::vector<int64_t> ex;
    for (const Json& e : c.at("exclude").as_array()) ex.push_back(e.as_int());
    PrecisionRecallF1 k(c.at("num_classes").as_int(), ex);
    Batch b;
    Outputs o;
    std::vector<int64_t> y, p;
    for (const Json& e : c.at("label").as_array()) y.push_back(e.as_int());
    for (const Json& e : c.at("pred").as_array()) p.push_back(e.as_int());
    const int64_t n = static_cast<int64_t>(y.size());
    b.tensors["label"] = tensor(y, {n});
    o["pred"] = tensor(p, {n});
    k.update(o, b);
    const auto r = k.compute();
    EXPECT_NEAR(r[0].second, c.at("accuracy").as_double(), 1e-12);
    for (int j = 0; j < 3; ++j) {
      EXPECT_NEAR(r[1 + j].second, c.at("macro").as_array()[j].as_double(), 1e-12) << j;
      EXPECT_NEAR(r[4 + j].second, c.at("micro").as_array()[j].as_double(), 1e-12) << j;
    }
  }
}

TEST(RankingTest, ByHandAndGolden) {
  // order by score: c(0) a(1) b(0) d(1) -> RR 1/2, AP (1/2 + 2/4) / 2
  EXPECT_DOUBLE_EQ(reciprocal_rank({0.5, 0.2, 0.9, 0.1}, {1, 0, 0, 1}), 0.5);
  EXPECT_DOUBLE_EQ(average_precision({0.5, 0.2, 0.9, 0.1}, {1, 0, 0, 1}), 0.5);
  EXPECT_TRUE(std::isnan(reciprocal_rank({0.3}, {0})));
  // ties keep input order: the first of two equal scores ranks first
  EXPECT_DOUBLE_EQ(reciprocal_rank({0.4, 0.4}, {0, 1}), 0.5);
  const Json g = golden();
  RankingMetric m;
  double rr = 0, ap = 0, q = 0;
  for (const Json& c : g.at("ranking").as_array()) {
    std::vector<double> s;
    std::vector<int64_t> l;
    for (const Json& e : c.at("scores").as_array()) s.push_back(e.as_double());
    for (const Json& e : c.at("labels").as_array()) l.push_back(e.as_int());
    if (c.at("rr").is_null()) {
      EXPECT_TRUE(std::isnan(reciprocal_rank(s, l)));
      continue;
    }
    EXPECT_NEAR(reciprocal_rank(s, l), c.at("rr").as_double(), 1e-12);
    EXPECT_NEAR(average_precision(s, l), c.at("ap").as_double(), 1e-12);
    m.add(s, l);
    rr += c.at("rr").as_double();
    ap += c.at("ap").as_double();
    q += 1;
  }
  const auto v = m.compute();
  EXPECT_NEAR(v[0].second, rr / q, 1e-12);
  EXPECT_NEAR(v[1].second, ap / q, 1e-12);
  EXPECT_EQ(v[2].second, q);

  // The metric groups candidates by batch["group"]: query 0 = {0.1 (rel), 0.9}, query 1 =
  // {0.8 (rel), 0.3}, query 2 has no relevant candidate and is skipped.
  RankingMetric b;
  Batch batch;
  batch.tensors["label"] = tensor(std::vector<int64_t>{1, 0, 1, 0, 0}, {5});
  batch.tensors["group"] = tensor(std::vector<int64_t>{0, 0, 1, 1, 2}, {5});
  Outputs o;
  o["score"] = tensor(std::vector<float>{0.1f, 0.9f, 0.8f, 0.3f, 0.5f}, {5});
  b.update(o, batch);
  EXPECT_DOUBLE_EQ(b.compute()[0].second, 0.75);
  EXPECT_DOUBLE_EQ(b.compute()[1].second, 0.75);
  EXPECT_DOUBLE_EQ(b.compute()[2].second, 2);
}

TEST(SquadTest, ByHandAndOfficialScript) {
  EXPECT_EQ(squad_normalize("The  Quick, brown fox!"), "quick brown fox");
  EXPECT_EQ(squad_normalize("an_a a-an"), "ana aan");  // "_" is punctuation too
  EXPECT_EQ(squad_normalize("ÀÉ Straße ΣΑ Жук"), "àé straße σα жук");
  EXPECT_DOUBLE_EQ(squad_exact_match("the Denver Broncos", {"Denver Broncos"}), 1.0);
  // pred {denver, broncos, win}, gold {denver, broncos}: p 2/3, r 1 -> 0.8
  EXPECT_DOUBLE_EQ(squad_f1("Denver Broncos win", {"Broncos", "Denver Broncos"}), 0.8);
  const Json g = golden();
  for (const Json& c : g.at("squad").as_array()) {
    const std::string p = c.at("prediction").as_string();
    const auto golds = strings(c.at("golds"));
    EXPECT_EQ(squad_normalize(p), c.at("normalized").as_string());
    EXPECT_DOUBLE_EQ(squad_exact_match(p, golds), c.at("em").as_double()) << p;
    EXPECT_NEAR(squad_f1(p, golds), c.at("f1").as_double(), 1e-12) << p;
  }
}

TEST(CmrcTest, ByHandAndOfficialScript) {
  const std::vector<std::string> want{"abc", "北", "京", "x", "y"};
  EXPECT_EQ(cmrc_segments(" ABC北京，x y "), want);
  EXPECT_DOUBLE_EQ(cmrc_exact_match("《北京》", {"北京"}), 1.0);
  // pred 北 京 大 (3), gold 北 京 (2): lcs 2 -> p 2/3 r 1 -> 0.8
  EXPECT_DOUBLE_EQ(cmrc_f1("北京大", {"上海", "北京"}), 0.8);
  EXPECT_DOUBLE_EQ(cmrc_f1("北京", {}), 0.0);
  const Json g = golden();
  for (const Json& c : g.at("cmrc").as_array()) {
    const std::string p = c.at("prediction").as_string();
    const auto golds = strings(c.at("golds"));
    EXPECT_EQ(cmrc_segments(p), strings(c.at("segments"))) << p;
    EXPECT_DOUBLE_EQ(cmrc_exact_match(p, golds), c.at("em").as_double()) << p;
    EXPECT_NEAR(cmrc_f1(p, golds), c.at("f1").as_double(), 1e-12) << p;
  }
  AnswerMetric m(AnswerMetric::Form::cmrc);
  m.add("北京大", {"北京"});
  m.add("上海", {"上海"});
  EXPECT_DOUBLE_EQ(m.compute()[0].second, 0.5);
  EXPECT_DOUBLE_EQ(m.compute()[1].second, 0.9);
}

}  // namespace
}  // namespace oar::metrics
