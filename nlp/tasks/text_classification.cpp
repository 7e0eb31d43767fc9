#include "nlp/tasks/text_classification.h"

#include "engine/ops.h"
#include "metrics/classification.h"

namespace oar::nlp {

TextClassificationTask::TextClassificationTask(std::shared_ptr<nn::Module> model,
                                               TextClassificationOptions o)
    : encoder_(std::dynamic_pointer_cast<TextEncoder>(model)), o_(std::move(o)) {
  OAR_CHECK(encoder_, "text_classification: the model '", model ? model->name() : "null",
            "' is not a text encoder (use model: {name: bert, ...})");
  OAR_CHECK(o_.num_classes >= 2, "text_classification: num_classes must be at least 2, got ",
            o_.num_classes);
  OAR_CHECK(o_.class_names.empty() || static_cast<int64_t>(o_.class_names.size()) == o_.num_classes,
            "text_classification: ", o_.class_names.size(), " class names for ", o_.num_classes,
            " classes");
  Generator gen(o_.init_seed);
  dropout_ = encoder_->register_module("dropout", std::make_shared<nn::Dropout>(o_.dropout));
  classifier_ = encoder_->register_module(
      "classifier",
      std::make_shared<nn::Linear>(encoder_->hidden_size(), o_.num_classes, true, &gen));
  nn::init::normal_(classifier_->weight, gen, 0.0, 0.02);  // as HF's _init_weights
  nn::init::zeros_(classifier_->bias);
}

Outputs TextClassificationTask::forward(const Batch& batch) {
  const Tensor types = batch.has("token_type_ids") ? batch["token_type_ids"] : Tensor();
  const Tensor mask = batch.has("attention_mask") ? batch["attention_mask"] : Tensor();
  BertOutput enc = encoder_->encode(batch["input_ids"], types, mask);
  Outputs out;
  out["logits"] = classifier_->forward(dropout_->forward(enc.pooled));
  return out;
}

Tensor TextClassificationTask::loss(const Outputs& outputs, const Batch& batch) {
  return cross_entropy(outputs.at("logits"), batch["label"]);
}

std::vector<std::unique_ptr<Metric>> TextClassificationTask::metrics() const {
  std::vector<std::unique_ptr<Metric>> m;
  m.push_back(std::make_unique<metrics::TopKAccuracy>(std::vector<int64_t>{1}));
  return m;
}

std::vector<Json> TextClassificationTask::predict(const Outputs& outputs,
                                                  const Batch& batch) const {
  Tensor probs = softmax(outputs.at("logits").detach().to(DType::f32), -1).contiguous();
  const int64_t n = probs.size(0), c = probs.size(1);
  const float* p = probs.data<float>();
  std::vector<Json> recs;
  for (int64_t i = 0; i < n; ++i) {
    const float* row = p + i * c;
    int64_t best = 0;
    for (int64_t j = 1; j < c; ++j)
      if (row[j] > row[best]) best = j;
    Json rec = i < static_cast<int64_t>(batch.meta.size()) ? batch.meta[static_cast<size_t>(i)]
                                                           : Json::object();
    if (!rec.is_object()) rec = Json::object();
    rec["class"] = best;
    if (!o_.class_names.empty()) rec["label"] = o_.class_names[static_cast<size_t>(best)];
    rec["score"] = static_cast<double>(row[best]);
    if (batch.has("label")) rec["truth"] = batch["label"].select(0, i).item<int64_t>();
    recs.push_back(rec);
  }
  return recs;
}

}  // namespace oar::nlp
