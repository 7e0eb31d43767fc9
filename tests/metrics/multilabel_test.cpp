// YouTube-8M metrics (Hit@1, PERR, GAP, mAP) against a hand-computed example and against the
// numbers of a numpy port of YT-8M's evaluator (golden/make_multilabel_golden.py); multi-view
// accuracy; the metric registry.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "engine/config/config.h"
#include "engine/config/error.h"
#include "engine/core/error.h"
#include "engine/io/json.h"
#include "metrics/multi_view.h"
#include "metrics/multilabel.h"
#include "metrics/registry.h"

using namespace oar;
using namespace oar::metrics;

namespace {

double value(const std::vector<std::pair<std::string, double>>& v, const std::string& key) {
  for (const auto& [k, x] : v)
    if (k == key) return x;
  ADD_FAILURE() << "no " << key;
  return NAN;
}

// 3 videos x 4 classes (see the expectations for the hand computation).
const std::vector<float> kScores = {0.9f, 0.1f, 0.5f,  0.3f,  //
                                    0.2f, 0.8f, 0.7f,  0.1f,  //
                                    0.6f, 0.4f, 0.05f, 0.3f};
const std::vector<float> kLabels = {1, 0, 1, 0,  //
                                    0, 0, 1, 0,  //
                                    0, 1, 0, 1};

Batch label_batch(const std::vector<float>& labels, int64_t n, int64_t c) {
  Batch b;
  b.tensors["label"] = tensor(labels, {n, c});
  b.size = n;
  return b;
}

}  // namespace

TEST(YouTube8M, HandComputedExample) {
  // hit@1: tops are classes 0 (pos), 1 (neg), 0 (neg) -> 1/3.
  EXPECT_NEAR(hit_at_one(kScores.data(), kLabels.data(), 3, 4), 1.0 / 3, 1e-12);
  // PERR: v0 top-2 {0, 2} both positive: 1; v1 top-1 {1}: 0; v2 top-2 {0, 1}: 1/2 -> 0.5.
  EXPECT_NEAR(precision_at_equal_recall_rate(kScores.data(), kLabels.data(), 3, 4), 0.5, 1e-12);
  // GAP@2: pooled 0.9+ 0.8- 0.7+ 0.6- 0.5+ 0.4+, 5 positives in all:
  // (1/1 + 2/3 + 3/5 + 4/6) / 5.
  const double gap = (1.0 + 2.0 / 3 + 3.0 / 5 + 4.0 / 6) / 5;
  EXPECT_NEAR(global_average_precision(kScores.data(), kLabels.data(), 3, 4, 2), gap, 1e-12);
  // mAP over the same top-2 pairs: class 0 {0.9+, 0.6-} of 1 positive: 1; class 1 {0.8-, 0.4+}:
  // 1/2; class 2 {0.7+, 0.5+} of 2: 1; class 3 has no pair but one positive: 0 -> 0.625.
  YouTube8MMetrics m(4, 2, /*from_logits=*/false);
  Outputs out{{"logits", tensor(kScores, {3, 4})}};
  m.update(out, label_batch(kLabels, 3, 4));
  const auto v = m.compute();
  EXPECT_NEAR(value(v, "hit_at_one"), 1.0 / 3, 1e-7);
  EXPECT_NEAR(value(v, "perr"), 0.5, 1e-7);
  EXPECT_NEAR(value(v, "gap"), gap, 1e-7);
  EXPECT_NEAR(value(v, "map"), 0.625, 1e-7);
  EXPECT_EQ(m.class_average_precisions(), (std::vector<double>{1.0, 0.5, 1.0, 0.0}));
  // GAP with k >= C pools every score: ranks of positives 1, 3, 5, 6, 9 of 12 (0.3 of v2 ties
  // 0.3 of v0; v0's came first).
  // sorted: .9+ .8- .7+ .6- .5+ .4+ .3-(v0) .3+(v2) .2- .1- .1- .05-
  const double all = (1.0 + 2.0 / 3 + 3.0 / 5 + 4.0 / 6 + 5.0 / 8) / 5;
  EXPECT_NEAR(global_average_precision(kScores.data(), kLabels.data(), 3, 4, 20), all, 1e-12);
  // reset forgets
  m.reset();
  EXPECT_EQ(value(m.compute(), "gap"), 0.0);
}

TEST(YouTube8M, PerrSkipsNonPositiveScoresAndEmptyVideos) {
  // A video without positives counts 0 (and still counts); a positive in the top-n whose score
  // is <= 0 does not count (YT-8M's `if predictions[...] > 0`).
  const std::vector<float> s = {0.5f, -0.1f, 0.2f, /**/ -0.3f, -0.2f, 0.1f};
  const std::vector<float> y = {0, 0, 0, /**/ 1, 1, 0};
  // v0: 0; v1: top-2 {2 (0.1, neg), 1 (-0.2, pos but <= 0)} -> 0.
  EXPECT_EQ(precision_at_equal_recall_rate(s.data(), y.data(), 2, 3), 0.0);
  const std::vector<float> y2 = {1, 0, 0, /**/ 0, 0, 1};
  EXPECT_EQ(precision_at_equal_recall_rate(s.data(), y2.data(), 2, 3), 1.0);
  // from_logits: a sigmoid keeps every score > 0, so v1's second positive counts.
  YouTube8MMetrics m(3, 20, true);
  m.update({{"logits", tensor(s, {2, 3})}}, label_batch({0, 0, 0, 1, 1, 0}, 2, 3));
  EXPECT_NEAR(value(m.compute(), "perr"), 0.25, 1e-7);  // (0 + 1/2) / 2
}

TEST(YouTube8M, MatchesNumpyPortOfTheReferenceEvaluator) {
  const std::string path =
      std::string(OAR_SOURCE_DIR) + "/tests/metrics/golden/multilabel_golden.json";
  std::ifstream in(path);
  ASSERT_TRUE(in.good()) << path;
  std::stringstream ss;
  ss << in.rdbuf();
  const Json golden = Json::parse(ss.str(), path);
  int cases = 0;
  for (const Json& c : golden.at("cases").as_array()) {
    const int64_t n = c.at("n").as_int(), k = c.at("c").as_int();
    std::vector<float> scores, labels;
    for (const Json& v : c.at("scores").as_array())
      scores.push_back(static_cast<float>(v.as_double()));
    for (const Json& v : c.at("labels").as_array())
      labels.push_back(static_cast<float>(v.as_double()));
    ASSERT_EQ(static_cast<int64_t>(scores.size()), n * k);
    YouTube8MMetrics m(k, c.at("top_k").as_int(), /*from_logits=*/false);
    const int64_t batch = c.at("batch").as_int();
    for (int64_t s = 0; s < n; s += batch) {  // in the same batches as the reference
      const int64_t b = std::min(batch, n - s);
      std::vector<float> bs(scores.begin() + s * k, scores.begin() + (s + b) * k);
      std::vector<float> by(labels.begin() + s * k, labels.begin() + (s + b) * k);
      m.update({{"logits", tensor(bs, {b, k})}}, label_batch(by, b, k));
    }
    const auto v = m.compute();
    SCOPED_TRACE("case " + std::to_string(cases));
    // the reference accumulates hit@1 and PERR in float32
    EXPECT_NEAR(value(v, "hit_at_one"), c.at("hit_at_one").as_double(), 1e-6);
    EXPECT_NEAR(value(v, "perr"), c.at("perr").as_double(), 1e-6);
    EXPECT_NEAR(value(v, "gap"), c.at("gap").as_double(), 1e-6);
    EXPECT_NEAR(value(v, "map"), c.at("map").as_double(), 1e-6);
    const std::vector<double> aps = m.class_average_precisions();
    const auto& ref = c.at("aps").as_array();
    ASSERT_EQ(aps.size(), ref.size());
    for (size_t j = 0; j < aps.size(); ++j) EXPECT_NEAR(aps[j], ref[j].as_double(), 1e-6) << j;
    ++cases;
  }
  EXPECT_EQ(cases, 3);
}

TEST(YouTube8M, BadInputsAndDistributedState) {
  YouTube8MMetrics m(4);
  EXPECT_THROW(m.update({{"scores", tensor(kScores, {3, 4})}}, label_batch(kLabels, 3, 4)), Error);
  EXPECT_THROW(m.update({{"logits", tensor(kScores, {4, 3})}}, label_batch(kLabels, 3, 4)), Error);
  try {
    (void)m.state();
    FAIL() << "state() of pooled metrics must refuse";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("one process"), std::string::npos);
  }
  EXPECT_THROW(YouTube8MMetrics(0), Error);
}

TEST(MultiViewAccuracy, AveragesViewScoresPerVideo) {
  // Video A (label 0): views [2, 0, 0] and [0, 1, 0]; alone, one of two views is right, the
  // averaged softmax ranks class 0 first. Video B (label 0): twice [1, 0, 3]: class 0 is second.
  MultiViewAccuracy m({1, 2});
  auto batch = [](std::vector<std::string> ids, std::vector<int64_t> labels) {
    Batch b;
    b.tensors["label"] = tensor(labels, {static_cast<int64_t>(labels.size())});
    for (const auto& id : ids) {
      Json j = Json::object();
      if (id.rfind("path:", 0) == 0)
        j["path"] = id.substr(5);
      else
        j["video_id"] = id;
      b.meta.push_back(j);
    }
    b.size = static_cast<int64_t>(labels.size());
    return b;
  };
  m.update({{"logits", tensor<float>({2, 0, 0, 1, 0, 3}, {2, 3})}}, batch({"A", "B"}, {0, 0}));
  m.update({{"logits", tensor<float>({1, 0, 3, 0, 1, 0}, {2, 3})}}, batch({"B", "A"}, {0, 0}));
  auto v = m.compute();
  EXPECT_DOUBLE_EQ(value(v, "top1"), 0.5);
  EXPECT_DOUBLE_EQ(value(v, "top2"), 1.0);
  EXPECT_DOUBLE_EQ(value(v, "num_videos"), 2.0);
  // Without a video_id the path names the video; views that disagree on the label are an error.
  m.reset();
  m.update({{"logits", tensor<float>({0, 5, 0}, {1, 3})}}, batch({"path:x.mp4"}, {1}));
  EXPECT_DOUBLE_EQ(value(m.compute(), "top1"), 1.0);
  try {
    m.update({{"logits", tensor<float>({0, 5, 0}, {1, 3})}}, batch({"path:x.mp4"}, {2}));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("x.mp4"), std::string::npos) << e.what();
  }
}

TEST(MetricRegistry, ConfigsNameMetrics) {
  register_components();
  Config c = Config::from_string(
      "metrics:\n  name: youtube8m\n  num_classes: 4\n  top_k: 2\n  from_logits: false\n",
      "m.yaml");
  std::shared_ptr<Metric> m = oar::metrics::metrics().create_from(c, "metrics");
  EXPECT_EQ(m->name(), "youtube8m");
  m->update({{"logits", tensor(kScores, {3, 4})}}, label_batch(kLabels, 3, 4));
  EXPECT_NEAR(value(m->compute(), "map"), 0.625, 1e-7);
  std::unique_ptr<Metric> owned = make_metric(c, "metrics");
  owned->update({{"logits", tensor(kScores, {3, 4})}}, label_batch(kLabels, 3, 4));
  EXPECT_NEAR(value(owned->compute(), "gap"), (1.0 + 2.0 / 3 + 3.0 / 5 + 4.0 / 6) / 5, 1e-7);
  for (const char* name : {"accuracy", "confusion", "multi_view_accuracy", "youtube8m"})
    EXPECT_TRUE(oar::metrics::metrics().contains(name)) << name;
  Config bad = Config::from_string("metrics:\n  name: youtube8m\n  top_k: 2\n", "m.yaml");
  EXPECT_THROW(oar::metrics::metrics().create_from(bad, "metrics"),
               ConfigError);  // num_classes missing
  Config typo = Config::from_string("metrics:\n  name: youtub8m\n", "m.yaml");
  EXPECT_THROW(oar::metrics::metrics().create_from(typo, "metrics"), ConfigError);
}
