#pragma once
// Text matching on query groups: a shared encoder scores each (query, candidate) pair,
// score = sigmoid(linear(dropout(pooled [CLS]))) (PaddleNLP's ERNIE matching heads).
//   pairwise:  the hinge max(0, margin - (score(positive) - score(negative))) averaged over every
//              (relevant, irrelevant) pair of candidates of the same query
//   pointwise: binary cross entropy of each candidate's score against relevant / irrelevant
// Evaluation ranks each query's candidates: MRR and MAP. (Pointwise matching as plain pair
// classification with accuracy is text_classification on text_a/text_b/label.)
#include <memory>
#include <string>
#include <vector>

#include "engine/nn.h"
#include "engine/train/task.h"
#include "nlp/models/bert.h"

namespace oar::nlp {

struct TextMatchingOptions {
  enum class Mode { pairwise, pointwise };
  Mode mode = Mode::pairwise;
  double margin = 0.1;  // pairwise
  double dropout = 0.1;
  uint64_t init_seed = 0;
};

class TextMatchingTask : public Task {
 public:
  // Throws oar::Error when `model` is not a TextEncoder or the margin is not positive.
  TextMatchingTask(std::shared_ptr<nn::Module> model, TextMatchingOptions o);
  nn::Module& model() override { return *encoder_; }
  // outputs: logit [C] and score = sigmoid(logit) [C], one per candidate (batch from the
  // query_groups reader)
  Outputs forward(const Batch& batch) override;
  // pairwise: mean hinge over the batch's (relevant, irrelevant) pairs of one query, 0 when there
  // is none; pointwise: mean binary cross entropy over the candidates.
  Tensor loss(const Outputs& outputs, const Batch& batch) override;
  // mrr, map, queries
  std::vector<std::unique_ptr<Metric>> metrics() const override;
  // {qid, text_a, ranking: [{text_b, score, (label)}] best first} per query
  std::vector<Json> predict(const Outputs& outputs, const Batch& batch) const override;

 private:
  std::shared_ptr<TextEncoder> encoder_;
  std::shared_ptr<nn::Dropout> dropout_;
  std::shared_ptr<nn::Linear> scorer_;
  TextMatchingOptions o_;
};

}  // namespace oar::nlp
