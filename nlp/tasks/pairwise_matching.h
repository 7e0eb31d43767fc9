#pragma once
// Pairwise text matching: a shared encoder scores each (query, candidate) pair,
// score = sigmoid(linear(dropout(pooled [CLS]))) (PaddleNLP's ERNIE pairwise matching), and the
// loss is the hinge max(0, margin - (score(positive) - score(negative))) averaged over every
// (relevant, irrelevant) pair of candidates of the same query. Evaluation ranks each query's
// candidates: MRR and MAP. Pointwise matching is text_classification on text_a/text_b pairs.
#include <memory>
#include <string>
#include <vector>

#include "engine/nn.h"
#include "engine/train/task.h"
#include "nlp/models/bert.h"

namespace oar::nlp {

struct PairwiseMatchingOptions {
  double margin = 0.1;
  double dropout = 0.1;
  uint64_t init_seed = 0;
};

class PairwiseMatchingTask : public Task {
 public:
  // Throws oar::Error when `model` is not a TextEncoder or the margin is not positive.
  PairwiseMatchingTask(std::shared_ptr<nn::Module> model, PairwiseMatchingOptions o);
  nn::Module& model() override { return *encoder_; }
  // outputs: score [C] in (0, 1), one per candidate (batch from the query_groups reader)
  Outputs forward(const Batch& batch) override;
  // Mean hinge over the batch's (relevant, irrelevant) pairs of one query; 0 when there is none.
  Tensor loss(const Outputs& outputs, const Batch& batch) override;
  // mrr, map, queries
  std::vector<std::unique_ptr<Metric>> metrics() const override;
  // {qid, text_a, ranking: [{text_b, score, (label)}] best first} per query
  std::vector<Json> predict(const Outputs& outputs, const Batch& batch) const override;

 private:
  std::shared_ptr<TextEncoder> encoder_;
  std::shared_ptr<nn::Dropout> dropout_;
  std::shared_ptr<nn::Linear> scorer_;
  PairwiseMatchingOptions o_;
};

}  // namespace oar::nlp
