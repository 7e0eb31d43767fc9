#include "video/tasks/video_classification.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>

#include "engine/core/error.h"
#include "engine/ops.h"
#include "engine/train/components.h"
#include "metrics/registry.h"
#include "video/models/sequence_model.h"

namespace oar::video {

std::pair<Tensor, Tensor> average_views(const Tensor& view_logits, int64_t views,
                                        bool multi_label) {
  OAR_CHECK(view_logits.dim() == 2, "video_classification: per-view logits must be [N*V, C], got ",
            view_logits.dim(), " dimensions");
  OAR_CHECK(views >= 1 && view_logits.size(0) % views == 0,
            "video_classification: ", view_logits.size(0),
            " view rows do not split into videos of ", views, " views");
  const int64_t n = view_logits.size(0) / views, c = view_logits.size(1);
  if (views == 1)
    return {multi_label ? sigmoid(view_logits) : softmax(view_logits, -1), view_logits};
  if (multi_label) {
    Tensor scores = mean(sigmoid(view_logits).reshape({n, views, c}), {1});
    // logit(p), with p kept off 0 and 1 so that the BCE of the average stays finite.
    Tensor p = clamp(scores, 1e-7, 1.0 - 1e-7);
    return {scores, sub(log(p), log(rsub(1.0, p)))};
  }
  // log(mean_v softmax) = logsumexp_v(log_softmax) - log V: stable for confident views.
  Tensor lp = log_softmax(view_logits, -1).reshape({n, views, c});
  Tensor logits = sub(logsumexp(lp, {1}), std::log(static_cast<double>(views)));
  return {exp(logits), logits};
}

VideoClassificationTask::VideoClassificationTask(std::shared_ptr<nn::Module> model,
                                                 VideoClassificationOptions o)
    : model_(std::move(model)), o_(std::move(o)) {
  OAR_CHECK(o_.num_classes >= 1, "video_classification: num_classes must be at least 1");
  OAR_CHECK(o_.class_names.empty() || static_cast<int64_t>(o_.class_names.size()) == o_.num_classes,
            "video_classification: ", o_.class_names.size(), " class names for ", o_.num_classes,
            " classes");
}

Outputs VideoClassificationTask::forward(const Batch& batch) {
  Tensor view_logits;
  int64_t views = 1;
  if (auto* seq = dynamic_cast<SequenceModel*>(model_.get())) {
    view_logits = seq->forward(batch);
  } else {
    const Tensor& x = batch[o_.input_key];
    if (x.dim() == 6) {  // [N, V, T, C, H, W]
      views = x.size(1);
      Shape s = x.shape();
      view_logits = (*model_)(x.reshape({s[0] * s[1], s[2], s[3], s[4], s[5]}));
    } else {
      OAR_CHECK(x.dim() == 5, "video_classification: batch[\"", o_.input_key,
                "\"] must be [N, T, C, H, W] or [N, V, T, C, H, W], got ", x.dim(), " dimensions");
      view_logits = (*model_)(x);
    }
  }
  OAR_CHECK(view_logits.dim() == 2 && view_logits.size(1) == o_.num_classes,
            "video_classification: the model gives scores of shape ",
            shape_str(view_logits.shape()), " per batch; task.num_classes = ", o_.num_classes,
            " needs [clips, ", o_.num_classes, "] (model.num_classes must match)");
  auto [scores, logits] = average_views(view_logits, views, o_.multi_label);
  Outputs out;
  out["logits"] = logits;
  out["scores"] = scores;
  return out;
}

Tensor VideoClassificationTask::loss(const Outputs& outputs, const Batch& batch) {
  const Tensor& logits = outputs.at("logits");
  const Tensor& label = batch["label"];
  if (o_.multi_label) {
    OAR_CHECK(label.dim() == 2 && label.size(1) == o_.num_classes,
              "video_classification: multi_label needs a multi-hot label [N, ", o_.num_classes,
              "] (reader multi_label: true), got ", label.dim(), " dimensions");
    return binary_cross_entropy_with_logits(logits, label.to(logits.dtype()));
  }
  OAR_CHECK(label.dim() == 1, "video_classification: single-label needs class indices [N], got ",
            label.dim(), " dimensions (a multi-hot label needs task.multi_label: true)");
  return cross_entropy(logits, label, -100, o_.label_smoothing);
}

std::vector<std::unique_ptr<Metric>> VideoClassificationTask::metrics() const {
  std::vector<std::unique_ptr<Metric>> m;
  Config c = o_.metrics;  // make_metric fills defaults in place
  if (!c.has("metrics")) {
    std::string yaml;
    if (o_.multi_label) {
      yaml = "metrics: [{name: youtube8m, num_classes: " + std::to_string(o_.num_classes) + "}]";
    } else {
      yaml = std::string("metrics: [{name: accuracy, topk: ") +
             (o_.num_classes > 5 ? "[1, 5]" : "[1]") + "}]";
    }
    c = Config::from_string(yaml, "<video_classification defaults>");
  }
  const size_t n = c.node("metrics").size();
  for (size_t i = 0; i < n; ++i)
    m.push_back(metrics::make_metric(c, "metrics[" + std::to_string(i) + "]"));
  return m;
}

std::vector<Json> VideoClassificationTask::predict(const Outputs& outputs,
                                                   const Batch& batch) const {
  Tensor probs = outputs.at("scores").detach().to(DType::f32).contiguous();
  const int64_t n = probs.size(0), c = probs.size(1);
  const int64_t k = std::min(o_.topk, c);
  const float* p = probs.data<float>();
  Tensor label;
  if (batch.has("label")) label = batch["label"].to(DType::f32).contiguous();
  std::vector<Json> recs;
  std::vector<int64_t> idx(static_cast<size_t>(c));
  for (int64_t i = 0; i < n; ++i) {
    std::iota(idx.begin(), idx.end(), 0);
    const float* row = p + i * c;
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int64_t a, int64_t b) {
      return row[a] > row[b] || (row[a] == row[b] && a < b);
    });
    Json rec = i < static_cast<int64_t>(batch.meta.size()) ? batch.meta[i] : Json::object();
    if (!rec.is_object()) rec = Json::object();
    Json top = Json::array();
    for (int64_t j = 0; j < k; ++j) {
      Json t = Json::object();
      t["class"] = idx[j];
      if (!o_.class_names.empty()) t["label"] = o_.class_names[static_cast<size_t>(idx[j])];
      t["score"] = static_cast<double>(row[idx[j]]);
      top.push_back(t);
    }
    rec["topk"] = top;
    if (label.defined()) {
      const float* l = label.data<float>();
      if (o_.multi_label && label.dim() == 2) {
        Json truth = Json::array(), names = Json::array();
        for (int64_t j = 0; j < c && j < label.size(1); ++j) {
          if (l[i * label.size(1) + j] <= 0) continue;
          truth.push_back(j);
          if (!o_.class_names.empty()) names.push_back(o_.class_names[static_cast<size_t>(j)]);
        }
        rec["truth"] = truth;
        if (!o_.class_names.empty()) rec["truth_labels"] = names;
      } else if (label.dim() == 1) {
        const auto t = static_cast<int64_t>(l[i]);
        rec["truth"] = t;
        if (!o_.class_names.empty() && t >= 0 && t < c)
          rec["truth_label"] = o_.class_names[static_cast<size_t>(t)];
      }
    }
    recs.push_back(rec);
  }
  return recs;
}

namespace {

std::vector<std::string> read_class_names(const std::string& file) {
  std::ifstream in(file);
  if (!in) OAR_FAIL("cannot read ", file);
  std::vector<std::string> names;
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) names.push_back(line);
  }
  return names;
}

}  // namespace

void register_video_tasks() {
  Schema s("task", "video_classification",
           "video classification: softmax (top-1/top-5) or, with multi_label, sigmoid BCE "
           "(YouTube-8M Hit@1, PERR, GAP, mAP); multi-view scores averaged per video");
  s.key<int64_t>("num_classes", 400, "classes")
      .range(1, 1000000)
      .key<bool>("multi_label", false,
                 "sigmoid BCE against multi-hot labels instead of softmax cross entropy")
      .key<double>("label_smoothing", 0.0, "label smoothing of the cross entropy (single-label)")
      .range(0, 1)
      .key<int64_t>("topk", 5, "labels per prediction record")
      .range(1, 1000)
      .key<std::string>("input_key", "video", "batch field of the clips (frame models)")
      .optional<std::vector<std::string>>("class_names", "names of the classes, in label order")
      .path("class_names_file", "",
            "a file with one class name per line, line i naming class i (instead of "
            "class_names), e.g. Kinetics-400's from Debian's opencv-doc")
      .any("metrics",
           "metric sections [{name: ..., ...}] from the metric registry (default: accuracy "
           "top-1/top-5, or youtube8m with multi_label)");
  tasks().add(s, [](const Config& c, const std::string& k, std::shared_ptr<nn::Module> model) {
    VideoClassificationOptions o;
    o.num_classes = c.get<int64_t>(k + ".num_classes");
    o.multi_label = c.get<bool>(k + ".multi_label");
    o.label_smoothing = c.get<double>(k + ".label_smoothing");
    if (o.multi_label && o.label_smoothing != 0.0)
      throw c.error(k + ".label_smoothing", "label smoothing is for softmax (single-label)", "0");
    o.topk = c.get<int64_t>(k + ".topk");
    o.input_key = c.get<std::string>(k + ".input_key");
    o.class_names = c.get<std::vector<std::string>>(k + ".class_names", {});
    const std::string file = c.get<std::string>(k + ".class_names_file", "");
    if (o.class_names.empty() && !file.empty()) {
      try {
        o.class_names = read_class_names(file);
      } catch (const Error& e) {
        throw c.error(k + ".class_names_file", e.what());
      }
    }
    if (!o.class_names.empty() && static_cast<int64_t>(o.class_names.size()) != o.num_classes)
      throw c.error(k + (c.has(k + ".class_names") ? ".class_names" : ".class_names_file"),
                    std::to_string(o.class_names.size()) + " class names for " +
                        std::to_string(o.num_classes) + " classes",
                    "one name per class");
    if (c.has(k + ".metrics")) {
      const YAML::Node list = c.node(k + ".metrics");
      if (!list.IsSequence() || list.size() == 0)
        throw c.error(k + ".metrics", "not a list of metric sections",
                      "e.g. [{name: accuracy, topk: [1, 5]}]");
      // Validate every section now (so a bad metric fails at start-up, with its line), and
      // keep them in a config of their own for metrics().
      Config m = c;
      for (size_t i = 0; i < list.size(); ++i)
        metrics::make_metric(m, k + ".metrics[" + std::to_string(i) + "]");
      o.metrics = Config::from_string("{}", c.file());
      o.metrics.set("metrics", YAML::Clone(m.node(k + ".metrics")), c.origin(k + ".metrics"));
    }
    auto* seq = dynamic_cast<SequenceModel*>(model.get());
    if (seq && seq->num_classes() != o.num_classes)
      throw c.error(k + ".num_classes",
                    "the model has " + std::to_string(seq->num_classes()) + " classes",
                    "model.num_classes");
    return std::make_shared<VideoClassificationTask>(std::move(model), std::move(o));
  });
}

}  // namespace oar::video
