#include "nlp/tasks/masked_lm.h"

#include <algorithm>
#include <numeric>

#include "engine/ops.h"
#include "metrics/text.h"

namespace oar::nlp {

MaskedLmTask::MaskedLmTask(std::shared_ptr<nn::Module> model, MaskedLmOptions o)
    : bert_(std::dynamic_pointer_cast<BertModel>(model)), o_(o) {
  OAR_CHECK(bert_, "masked_lm: the model '", model ? model->name() : "null",
            "' is not a BERT/ERNIE encoder (use model: {name: bert, ...})");
  OAR_CHECK(o_.top_k >= 1, "masked_lm: top_k must be at least 1, got ", o_.top_k);
  Generator gen(o_.init_seed);
  auto cls = bert_->register_module("cls", std::make_shared<nn::Module>());
  head_ = cls->register_module("predictions",
                               std::make_shared<BertMlmHead>(
                                   bert_->config, bert_->embeddings->word_embeddings->weight, gen));
}

Outputs MaskedLmTask::forward(const Batch& batch) {
  OAR_CHECK(batch.has("mlm_positions"),
            "masked_lm: the batch has no mlm_positions (use the masked_text reader)");
  const Tensor types = batch.has("token_type_ids") ? batch["token_type_ids"] : Tensor();
  const Tensor mask = batch.has("attention_mask") ? batch["attention_mask"] : Tensor();
  const Tensor h = bert_->encode(batch["input_ids"], types, mask).last_hidden_state;
  const Tensor flat = h.reshape({h.size(0) * h.size(1), h.size(2)});
  Outputs out;
  // Only the masked positions reach the [*, V] projection, the costly part of the head.
  out["mlm_logits"] = head_->forward(index_select(flat, 0, batch["mlm_positions"]));
  return out;
}

Tensor MaskedLmTask::loss(const Outputs& outputs, const Batch& batch) {
  return cross_entropy(outputs.at("mlm_logits"), batch["mlm_labels"]);
}

std::vector<std::unique_ptr<Metric>> MaskedLmTask::metrics() const {
  std::vector<std::unique_ptr<Metric>> m;
  m.push_back(std::make_unique<metrics::MaskedLmMetric>());
  return m;
}

std::vector<Json> MaskedLmTask::predict(const Outputs& outputs, const Batch& batch) const {
  const Tensor probs = softmax(outputs.at("mlm_logits").detach().to(DType::f32), -1).contiguous();
  const std::vector<int64_t> pos = batch["mlm_positions"].to_vector<int64_t>();
  const std::vector<int64_t> truth = batch["mlm_labels"].to_vector<int64_t>();
  const int64_t len = batch["input_ids"].size(1), v = probs.size(1);
  const int64_t k = std::min(o_.top_k, v);
  const float* p = probs.data<float>();
  std::vector<Json> recs;
  for (int64_t i = 0; i < batch.size; ++i) {
    Json rec = i < static_cast<int64_t>(batch.meta.size()) ? batch.meta[static_cast<size_t>(i)]
                                                           : Json::object();
    if (!rec.is_object()) rec = Json::object();
    rec["masked"] = Json::array();
    recs.push_back(std::move(rec));
  }
  std::vector<int64_t> order(static_cast<size_t>(v));
  for (size_t m = 0; m < pos.size(); ++m) {
    const float* row = p + static_cast<int64_t>(m) * v;
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [row](int64_t a, int64_t b) { return row[a] > row[b]; });
    Json e = Json::object();
    e["position"] = pos[m] % len;
    e["truth"] = truth[m];
    Json top = Json::array(), scores = Json::array();
    for (int64_t j = 0; j < k; ++j) {
      top.push_back(order[static_cast<size_t>(j)]);
      scores.push_back(static_cast<double>(row[order[static_cast<size_t>(j)]]));
    }
    e["top"] = top;
    e["scores"] = scores;
    recs[static_cast<size_t>(pos[m] / len)]["masked"].push_back(e);
  }
  return recs;
}

}  // namespace oar::nlp
