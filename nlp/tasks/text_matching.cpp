#include "nlp/tasks/text_matching.h"

#include <algorithm>
#include <numeric>

#include "engine/ops.h"
#include "metrics/text.h"

namespace oar::nlp {

TextMatchingTask::TextMatchingTask(std::shared_ptr<nn::Module> model, TextMatchingOptions o)
    : encoder_(std::dynamic_pointer_cast<TextEncoder>(model)), o_(o) {
  OAR_CHECK(encoder_, "text_matching: the model '", model ? model->name() : "null",
            "' is not a text encoder (use model: {name: bert, ...})");
  OAR_CHECK(o_.mode == TextMatchingOptions::Mode::pointwise || o_.margin > 0,
            "text_matching: margin must be positive, got ", o_.margin);
  Generator gen(o_.init_seed);
  dropout_ = encoder_->register_module("dropout", std::make_shared<nn::Dropout>(o_.dropout));
  scorer_ = encoder_->register_module(
      "scorer", std::make_shared<nn::Linear>(encoder_->hidden_size(), 1, true, &gen));
  nn::init::normal_(scorer_->weight, gen, 0.0, 0.02);
  nn::init::zeros_(scorer_->bias);
}

Outputs TextMatchingTask::forward(const Batch& batch) {
  BertOutput enc =
      encoder_->encode(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"]);
  Outputs out;
  out["logit"] = scorer_->forward(dropout_->forward(enc.pooled)).reshape({-1});
  out["score"] = sigmoid(out["logit"]);
  return out;
}

Tensor TextMatchingTask::loss(const Outputs& outputs, const Batch& batch) {
  if (o_.mode == TextMatchingOptions::Mode::pointwise) {
    const Tensor& logit = outputs.at("logit");
    const Tensor relevant = gt(batch["label"], 0.0).to(DType::f32).to(logit.device());
    return binary_cross_entropy_with_logits(logit, relevant);
  }
  const Tensor& score = outputs.at("score");
  const auto labels = batch["label"].to(Device::cpu()).contiguous().to_vector<int64_t>();
  const auto group = batch["group"].to(Device::cpu()).contiguous().to_vector<int64_t>();
  std::vector<int64_t> pos, neg;
  for (size_t i = 0; i < labels.size(); ++i)
    for (size_t j = 0; j < labels.size(); ++j)
      if (group[i] == group[j] && labels[i] > 0 && labels[j] <= 0) {
        pos.push_back(static_cast<int64_t>(i));
        neg.push_back(static_cast<int64_t>(j));
      }
  if (pos.empty()) return mul(sum(score), 0.0);  // keeps the graph; no pair to rank
  const int64_t p = static_cast<int64_t>(pos.size());
  const Tensor sp = index_select(score, 0, tensor(pos, {p}).to(score.device()));
  const Tensor sn = index_select(score, 0, tensor(neg, {p}).to(score.device()));
  return mean(relu(rsub(o_.margin, sub(sp, sn))));
}

std::vector<std::unique_ptr<Metric>> TextMatchingTask::metrics() const {
  std::vector<std::unique_ptr<Metric>> m;
  m.push_back(std::make_unique<metrics::RankingMetric>("score", "label", "group"));
  return m;
}

std::vector<Json> TextMatchingTask::predict(const Outputs& outputs, const Batch& batch) const {
  const auto score =
      outputs.at("score").detach().to(Device::cpu()).to(DType::f32).contiguous().to_vector<float>();
  const auto labels = batch["label"].to(Device::cpu()).contiguous().to_vector<int64_t>();
  const auto group = batch["group"].to(Device::cpu()).contiguous().to_vector<int64_t>();
  std::vector<Json> recs;
  size_t k = 0;
  for (int64_t i = 0; i < batch.size; ++i) {
    const Json& meta = batch.meta.at(static_cast<size_t>(i));
    const auto& cands = meta.at("candidates").as_array();
    std::vector<size_t> rows;
    for (; k < group.size() && group[k] == i; ++k) rows.push_back(k);
    OAR_CHECK(rows.size() == cands.size(), "text_matching: ", rows.size(), " scores for the ",
              cands.size(), " candidates of query ", meta.at("qid").dump());
    std::vector<size_t> order(rows.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return score[rows[a]] > score[rows[b]]; });
    Json ranking = Json::array();
    for (size_t r : order) {
      Json j = Json::object();
      j["text_b"] = cands[r];
      j["score"] = score[rows[r]];
      j["label"] = labels[rows[r]];
      ranking.push_back(j);
    }
    Json rec = Json::object();
    rec["qid"] = meta.at("qid");
    rec["text_a"] = meta.at("text_a");
    rec["ranking"] = ranking;
    recs.push_back(rec);
  }
  return recs;
}

}  // namespace oar::nlp
