// The video classification task: softmax / BCE losses against hand-computed values, multi-view
// score averaging (values and finite-difference gradients), metrics built through the metric
// registry (defaults and config sections), prediction records, sequence models fed the batch,
// and the config errors of the task section.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "engine/config/config.h"
#include "engine/core/error.h"
#include "engine/ops.h"
#include "engine/train/components.h"
#include "readers/dataset.h"
#include "readers/registry.h"
#include "tests/support/gradcheck.h"
#include "video/register.h"
#include "video/tasks/video_classification.h"

using namespace oar;
using oar::video::VideoClassificationOptions;
using oar::video::VideoClassificationTask;

namespace {

// A parameter-free "frame model": the logit of class c is the mean of channel c over the clip,
// so expected scores can be computed by hand. x [N, T, C, H, W] -> [N, C].
class ChannelMean : public nn::Module {
 public:
  Tensor forward(const Tensor& x) override {
    EXPECT_EQ(x.dim(), 5);
    return mean(x, {1, 3, 4});
  }
  std::string name() const override { return "ChannelMean"; }
};

Tensor from(const std::vector<float>& v, const Shape& s) {
  return tensor<float>(v, s);
}

double softmax_of(const std::vector<double>& z, size_t k) {
  double s = 0;
  for (double v : z) s += std::exp(v);
  return std::exp(z[k]) / s;
}

// A batch of N videos with V views each, every view a constant clip whose channel c holds
// value(n, v, c); labels given.
Batch constant_views(int64_t n, int64_t v, int64_t c,
                     const std::function<float(int64_t, int64_t, int64_t)>& value,
                     const std::vector<int64_t>& labels) {
  const int64_t t = 2, h = 2, w = 3;
  Tensor x = empty({n, v, t, c, h, w});
  float* p = x.data<float>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < v; ++j)
      for (int64_t f = 0; f < t; ++f)
        for (int64_t ch = 0; ch < c; ++ch)
          for (int64_t q = 0; q < h * w; ++q)
            *p++ = value(i, j, ch) + (q % 2 == 0 ? 0.25f : -0.25f);  // mean over H, W = value
  Batch b;
  b.size = n;
  b.tensors["video"] = v == 1 ? x.reshape({n, t, c, h, w}) : x;
  b.tensors["label"] = tensor<int64_t>(labels, {n});
  for (int64_t i = 0; i < n; ++i) {
    Json m = Json::object();
    m["path"] = "clip" + std::to_string(i) + ".mp4";
    b.meta.push_back(m);
  }
  return b;
}

float view_value(int64_t i, int64_t j, int64_t ch) {
  return 0.3f * static_cast<float>(ch * (j + 1)) - 0.7f * static_cast<float>(i) +
         (ch == i ? 1.0f : 0.0f);
}

}  // namespace

TEST(VideoClassification, AverageViewsMeansTheSoftmaxScores) {
  // 2 videos x 3 views, 4 classes.
  const std::vector<float> l = {1,  0, -1,   2, 0, 0, 0,  0, 3, -2, 1, 0,
                                -1, 1, 0.5f, 0, 2, 2, -3, 1, 0, 1,  0, -1};
  auto [scores, logits] = video::average_views(from(l, {6, 4}), 3, false);
  ASSERT_EQ(scores.shape(), (Shape{2, 4}));
  for (int n = 0; n < 2; ++n)
    for (size_t k = 0; k < 4; ++k) {
      double expect = 0;
      for (int v = 0; v < 3; ++v) {
        std::vector<double> z(4);
        for (int j = 0; j < 4; ++j) z[j] = l[(n * 3 + v) * 4 + j];
        expect += softmax_of(z, k) / 3;
      }
      EXPECT_NEAR(scores.data<float>()[n * 4 + k], expect, 1e-6);
      EXPECT_NEAR(logits.data<float>()[n * 4 + k], std::log(expect), 1e-5);
    }
  // One view: the logits pass through unchanged.
  auto [s1, l1] = video::average_views(from(l, {6, 4}), 1, false);
  EXPECT_EQ(l1.shape(), (Shape{6, 4}));
  EXPECT_FLOAT_EQ(l1.data<float>()[8], 3.0f);
  EXPECT_NEAR(s1.data<float>()[8], softmax_of({3, -2, 1, 0}, 0), 1e-6);
  EXPECT_THROW(video::average_views(from(l, {6, 4}), 4, false), Error);
}

TEST(VideoClassification, AverageViewsMeansTheSigmoidScoresWithMultiLabel) {
  const std::vector<float> l = {2, -1, 0, -3, 1, 4};  // 1 video x 2 views x 3 classes
  auto [scores, logits] = video::average_views(from(l, {2, 3}), 2, true);
  for (int k = 0; k < 3; ++k) {
    const double p = (1 / (1 + std::exp(-l[k])) + 1 / (1 + std::exp(-l[3 + k]))) / 2;
    EXPECT_NEAR(scores.data<float>()[k], p, 1e-6);
    EXPECT_NEAR(logits.data<float>()[k], std::log(p / (1 - p)), 1e-4);
  }
}

TEST(VideoClassification, AverageViewsGradientsMatchFiniteDifferences) {
  for (bool multi : {false, true}) {
    auto f = [multi](const std::vector<Tensor>& in) {
      return video::average_views(in[0], 3, multi).second;
    };
    const std::vector<Tensor> in = {oar::testing::rand_input({6, 4}, multi ? 3 : 4, -2.0, 2.0)};
    EXPECT_GRADCHECK(f, in);
  }
}

TEST(VideoClassification, MultiViewBatchIsRunPerViewAndAveragedPerVideo) {
  VideoClassificationOptions o;
  o.num_classes = 3;
  VideoClassificationTask task(std::make_shared<ChannelMean>(), o);
  Batch b = constant_views(2, 4, 3, view_value, {0, 2});
  Outputs out = task.forward(b);
  ASSERT_EQ(out.at("scores").shape(), (Shape{2, 3}));
  double loss = 0;
  for (int64_t i = 0; i < 2; ++i) {
    std::vector<double> avg(3, 0.0);
    for (int64_t v = 0; v < 4; ++v) {
      std::vector<double> z(3);
      for (int64_t c = 0; c < 3; ++c) z[c] = view_value(i, v, c);
      for (size_t c = 0; c < 3; ++c) avg[c] += softmax_of(z, c) / 4;
    }
    for (int64_t c = 0; c < 3; ++c)
      EXPECT_NEAR(out.at("scores").data<float>()[i * 3 + c], avg[c], 1e-5);
    loss -= std::log(avg[i == 0 ? 0 : 2]) / 2;
  }
  // The loss of a multi-view batch is the cross entropy of the averaged scores.
  EXPECT_NEAR(task.loss(out, b).item<float>(), loss, 1e-5);
  // A clip of the wrong rank is an error that says what was expected.
  Batch bad = b;
  bad.tensors["video"] = zeros({2, 3, 4});
  try {
    task.forward(bad);
    FAIL() << "no error for a 3-d clip";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[N, T, C, H, W]"), std::string::npos) << e.what();
  }
  // A model whose class count differs from the task's is named as such.
  VideoClassificationOptions four = o;
  four.num_classes = 4;
  VideoClassificationTask wrong(std::make_shared<ChannelMean>(), four);
  try {
    wrong.forward(b);
    FAIL() << "no error for 3 scores against 4 classes";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("task.num_classes = 4"), std::string::npos) << e.what();
  }
}

TEST(VideoClassification, SingleLabelLossWithLabelSmoothing) {
  VideoClassificationOptions o;
  o.num_classes = 3;
  o.label_smoothing = 0.2;
  VideoClassificationTask task(std::make_shared<ChannelMean>(), o);
  Batch b = constant_views(2, 1, 3, view_value, {1, 2});
  Outputs out = task.forward(b);
  double expect = 0;
  for (int64_t i = 0; i < 2; ++i) {
    std::vector<double> z(3);
    for (int64_t c = 0; c < 3; ++c) z[c] = view_value(i, 0, c);
    const int64_t y = i == 0 ? 1 : 2;
    for (size_t c = 0; c < 3; ++c) {
      const double target = (static_cast<int64_t>(c) == y ? 0.8 : 0.0) + 0.2 / 3;
      expect -= target * std::log(softmax_of(z, c)) / 2;
    }
  }
  EXPECT_NEAR(task.loss(out, b).item<float>(), expect, 1e-5);
}

TEST(VideoClassification, MultiLabelLossIsBinaryCrossEntropy) {
  VideoClassificationOptions o;
  o.num_classes = 3;
  o.multi_label = true;
  VideoClassificationTask task(std::make_shared<ChannelMean>(), o);
  Batch b = constant_views(2, 1, 3, view_value, {0, 0});
  b.tensors["label"] = from({1, 0, 1, 0, 0, 1}, {2, 3});
  Outputs out = task.forward(b);
  double expect = 0;
  const float y[] = {1, 0, 1, 0, 0, 1};
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t c = 0; c < 3; ++c) {
      const double p = 1 / (1 + std::exp(-view_value(i, 0, c)));
      expect -= (y[i * 3 + c] * std::log(p) + (1 - y[i * 3 + c]) * std::log(1 - p)) / 6;
    }
  EXPECT_NEAR(task.loss(out, b).item<float>(), expect, 1e-5);
  // A class-index label is refused with a hint.
  Batch idx = constant_views(2, 1, 3, view_value, {0, 1});
  EXPECT_THROW(task.loss(out, idx), Error);
}

TEST(VideoClassification, DefaultMetricsComeFromTheRegistry) {
  video::register_components();
  VideoClassificationOptions o;
  o.num_classes = 3;
  VideoClassificationTask task(std::make_shared<ChannelMean>(), o);
  auto ms = task.metrics();
  ASSERT_EQ(ms.size(), 1u);
  EXPECT_EQ(ms[0]->name(), "accuracy");
  // Video 0 ranks class 0 first (right), video 1 ranks class 1 first (label 2: wrong).
  Batch b = constant_views(2, 2, 3, view_value, {0, 2});
  Outputs out = task.forward(b);
  ms[0]->update(out, b);
  auto r = ms[0]->compute();
  ASSERT_FALSE(r.empty());
  EXPECT_EQ(r[0].first, "top1");
  EXPECT_DOUBLE_EQ(r[0].second, 0.5);

  o.multi_label = true;
  VideoClassificationTask ml(std::make_shared<ChannelMean>(), o);
  auto mm = ml.metrics();
  ASSERT_EQ(mm.size(), 1u);
  EXPECT_EQ(mm[0]->name(), "youtube8m");
  Batch mb = constant_views(2, 1, 3, view_value, {0, 0});
  mb.tensors["label"] = from({1, 0, 0, 0, 0, 1}, {2, 3});
  mm[0]->update(ml.forward(mb), mb);
  auto y = mm[0]->compute();
  EXPECT_EQ(y[0].first, "hit_at_one");
  EXPECT_DOUBLE_EQ(y[0].second, 0.5);  // video 0's top class 0 is positive, video 1's is not
}

TEST(VideoClassification, TaskSectionBuildsConfiguredMetricsAndRejectsBadOnes) {
  video::register_components();
  register_engine_components();
  auto build = [](const std::string& task_yaml) {
    Config c = Config::from_string("task: " + task_yaml, "t.yaml");
    return tasks().create_from(c, "task", std::make_shared<ChannelMean>());
  };
  auto t = build(
      "{name: video_classification, num_classes: 3, metrics: [{name: accuracy, topk: [1, 2]}, "
      "{name: confusion, num_classes: 3}]}");
  auto ms = t->metrics();
  ASSERT_EQ(ms.size(), 2u);
  EXPECT_EQ(ms[0]->name(), "accuracy");
  EXPECT_EQ(ms[1]->name(), "confusion");
  EXPECT_EQ(t->metrics().size(), 2u);  // fresh objects every evaluation
  auto message = [&](const std::string& yaml) -> std::string {
    try {
      build(yaml);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(message("{name: video_classification, num_classes: 3, metrics: [{name: acuracy}]}")
                .find("acuracy"),
            std::string::npos);
  EXPECT_NE(message("{name: video_classification, num_classes: 3, metrics: {name: accuracy}}")
                .find("task.metrics"),
            std::string::npos);
  EXPECT_NE(message("{name: video_classification, num_classes: 3, class_names: [a, b]}")
                .find("2 class names for 3 classes"),
            std::string::npos);
  EXPECT_NE(message("{name: video_classification, num_classes: 3, multi_label: true, "
                    "label_smoothing: 0.1}")
                .find("task.label_smoothing"),
            std::string::npos);
  EXPECT_NE(message("{name: video_classification, num_classes: 3, class_names_file: /no/such}")
                .find("task.class_names_file"),
            std::string::npos);
}

TEST(VideoClassification, PredictRecordsCarryPathTopKNamesAndScores) {
  VideoClassificationOptions o;
  o.num_classes = 3;
  o.topk = 2;
  o.class_names = {"circle", "square", "triangle"};
  VideoClassificationTask task(std::make_shared<ChannelMean>(), o);
  Batch b = constant_views(2, 3, 3, view_value, {0, 2});
  Outputs out = task.forward(b);
  auto recs = task.predict(out, b);
  ASSERT_EQ(recs.size(), 2u);
  const float* s = out.at("scores").data<float>();
  for (int64_t i = 0; i < 2; ++i) {
    const Json& r = recs[static_cast<size_t>(i)];
    EXPECT_EQ(r.at("path").as_string(), "clip" + std::to_string(i) + ".mp4");
    ASSERT_EQ(r.at("topk").size(), 2u);
    const int64_t c0 = r.at("topk").as_array()[0].at("class").as_int(),
                  c1 = r.at("topk").as_array()[1].at("class").as_int();
    EXPECT_GE(s[i * 3 + c0], s[i * 3 + c1]);
    for (int64_t c = 0; c < 3; ++c)
      if (c != c0) {
        EXPECT_GE(s[i * 3 + c0], s[i * 3 + c]);
      }
    EXPECT_EQ(r.at("topk").as_array()[0].at("label").as_string(),
              o.class_names[static_cast<size_t>(c0)]);
    EXPECT_NEAR(r.at("topk").as_array()[0].at("score").as_double(), s[i * 3 + c0], 1e-6);
  }
  EXPECT_EQ(recs[1].at("truth").as_int(), 2);
  EXPECT_EQ(recs[1].at("truth_label").as_string(), "triangle");
}

TEST(VideoClassification, SequenceModelsReadTheWholeBatch) {
  video::register_components();
  register_engine_components();
  Config c = Config::from_string(
      "model: {name: attention_cluster, feature_names: [rgb], feature_dims: [4], "
      "cluster_nums: [2], fc_sizes: [6, 5], drop_rate: 0.0, num_classes: 3}\n"
      "task: {name: video_classification, multi_label: true, num_classes: 3, topk: 3}\n",
      "s.yaml");
  Generator gen(3);
  auto model = models().create_from(c, "model", {&gen});
  auto task = tasks().create_from(c, "task", model);
  Batch b;
  b.size = 2;
  b.tensors["rgb"] = randn({2, 5, 4}, &gen);
  b.tensors["length"] = tensor<int64_t>({5, 3}, {2});
  b.tensors["label"] = from({0, 1, 0, 1, 0, 1}, {2, 3});
  b.meta = {Json::object(), Json::object()};
  Outputs out = task->forward(b);
  ASSERT_EQ(out.at("logits").shape(), (Shape{2, 3}));
  // Padding past a video's length does not change its scores.
  Batch padded = b;
  padded.tensors["rgb"] = b["rgb"].clone();
  padded.tensors["rgb"].select(0, 1).select(0, 4).fill_(100.0);
  Outputs out2 = task->forward(padded);
  for (int k = 0; k < 6; ++k)
    EXPECT_NEAR(out.at("scores").data<float>()[k], out2.at("scores").data<float>()[k], 1e-6);
  EXPECT_TRUE(std::isfinite(task->loss(out, b).item<float>()));
  auto recs = task->predict(out, b);
  EXPECT_EQ(recs[1].at("truth").size(), 2u);
  // The task's classes must match the model's.
  Config bad = Config::from_string(
      "model: {name: attention_cluster, feature_names: [rgb], feature_dims: [4], "
      "cluster_nums: [2], fc_sizes: [6, 5], num_classes: 3}\n"
      "task: {name: video_classification, multi_label: true, num_classes: 4}\n",
      "bad.yaml");
  EXPECT_THROW(tasks().create_from(bad, "task", model), ConfigError);
}

// Every shipped video config (configs/video/*.yaml and the proof's configs/video/synth/*.yaml)
// builds its task and, for every data mode, its reader with its sampling keys and clip
// transforms, the lists pointed at a one-line list (nothing is decoded).
TEST(VideoClassification, ShippedConfigsBuildTheirTasksAndReaders) {
  video::register_components();
  readers::register_components();
  register_engine_components();
  const std::filesystem::path tmp =
      std::filesystem::temp_directory_path() / ("oar_vc_" + std::to_string(::getpid()));
  std::filesystem::create_directories(tmp);
  {
    std::ofstream(tmp / "videos.list") << "a.mp4 1\n";
    std::ofstream(tmp / "features.list") << "a.safetensors\n";
    std::ofstream(tmp / "names.txt") << "a\nb\nc\n";
  }
  const std::string dir = std::string(OAR_SOURCE_DIR) + "/configs/video";
  int checked = 0;
  for (const std::string sub : {"", "/synth"}) {
    for (const auto& e : std::filesystem::directory_iterator(dir + sub)) {
      if (e.path().extension() != ".yaml") continue;
      SCOPED_TRACE(e.path().string());
      Config probe = Config::load(e.path());
      const bool features = probe.get<std::string>("data.name") == "video_features";
      std::vector<std::string> o;
      for (const std::string mode : {"train", "valid", "test", "infer"})
        if (probe.has("data." + mode))
          o.push_back("data." + mode +
                      ".list=" + (tmp / (features ? "features.list" : "videos.list")).string());
      // The proof's class names live with its generated clips.
      if (sub == "/synth") o.push_back("task.class_names_file=" + (tmp / "names.txt").string());
      Config c = Config::load(e.path(), o);
      ASSERT_NO_THROW(tasks().create_from(c, "task", std::make_shared<ChannelMean>()));
      for (const std::string mode : {"train", "valid", "test", "infer"}) {
        if (!readers::has_mode(c, mode)) continue;
        std::shared_ptr<readers::DataLoader> loader;
        ASSERT_NO_THROW(loader = readers::make_loader(c, mode, 0)) << mode;
        EXPECT_EQ(loader->num_samples(), 1) << mode;
      }
      ++checked;
    }
  }
  EXPECT_GE(checked, 16);
  std::filesystem::remove_all(tmp);
}
