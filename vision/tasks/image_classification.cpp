#include "vision/tasks/image_classification.h"

#include <algorithm>
#include <numeric>

#include "engine/ops.h"
#include "metrics/classification.h"
#include "vision/confusion_picture.h"

namespace oar::vision {

ImageClassificationTask::ImageClassificationTask(std::shared_ptr<nn::Module> model,
                                                 ImageClassificationOptions o)
    : model_(std::move(model)), o_(std::move(o)) {
  OAR_CHECK(o_.num_classes >= 1, "image_classification: num_classes must be at least 1");
  OAR_CHECK(o_.class_names.empty() || static_cast<int64_t>(o_.class_names.size()) == o_.num_classes,
            "image_classification: ", o_.class_names.size(), " class names for ", o_.num_classes,
            " classes");
}

Outputs ImageClassificationTask::forward(const Batch& batch) {
  Outputs out;
  out["logits"] = (*model_)(batch["image"]);
  return out;
}

Tensor ImageClassificationTask::loss(const Outputs& outputs, const Batch& batch) {
  // Mixup / cutmix targets (readers' batch transforms) replace the hard labels.
  if (batch.has("label_soft"))
    return cross_entropy_soft(outputs.at("logits"), batch["label_soft"]);
  return cross_entropy(outputs.at("logits"), batch["label"], -100, o_.label_smoothing);
}

std::vector<std::unique_ptr<Metric>> ImageClassificationTask::metrics() const {
  std::vector<std::unique_ptr<Metric>> m;
  std::vector<int64_t> ks{1};
  if (o_.num_classes > 5) ks.push_back(5);
  m.push_back(std::make_unique<metrics::TopKAccuracy>(ks));
  m.push_back(std::make_unique<ConfusionMatrixWithPicture>(o_.num_classes, o_.class_names));
  return m;
}

std::vector<Json> ImageClassificationTask::predict(const Outputs& outputs, const Batch& batch) const {
  Tensor probs = softmax(outputs.at("logits").detach().to(DType::f32), -1).contiguous();
  const int64_t n = probs.size(0), c = probs.size(1);
  const int64_t k = std::min(o_.topk, c);
  const float* p = probs.data<float>();
  std::vector<Json> recs;
  std::vector<int64_t> idx(static_cast<size_t>(c));
  for (int64_t i = 0; i < n; ++i) {
    std::iota(idx.begin(), idx.end(), 0);
    const float* row = p + i * c;
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                      [&](int64_t a, int64_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
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
    if (batch.has("label")) {
      const int64_t t = batch["label"].select(0, i).item<int64_t>();
      rec["truth"] = t;
      if (!o_.class_names.empty() && t >= 0 && t < c)
        rec["truth_label"] = o_.class_names[static_cast<size_t>(t)];
    }
    recs.push_back(rec);
  }
  return recs;
}

}  // namespace oar::vision
