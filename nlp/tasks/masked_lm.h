#pragma once
// Masked-LM pre-training and further training (BERT's MLM objective, without next-sentence
// prediction, as RoBERTa and ERNIE's further-training recipes use it): the encoder's hidden
// states at the masked positions -> BertMlmHead (transform, then logits over the vocabulary with
// the word embeddings tied) -> cross entropy against the original tokens. Metrics: masked-token
// accuracy and perplexity (exp of the mean cross entropy over masked tokens).
//
// The head is registered on the encoder as `cls.predictions`, Hugging Face's name, so checkpoints
// save and load it with the encoder. Batches come from MaskedTextDataset (mlm_positions into the
// flattened [N * L] tokens, mlm_labels).
#include <memory>
#include <string>
#include <vector>

#include "engine/nn.h"
#include "engine/train/task.h"
#include "nlp/models/bert.h"

namespace oar::nlp {

struct MaskedLmOptions {
  uint64_t init_seed = 0;  // the head's N(0, 0.02) initialisation
  int64_t top_k = 5;       // predictions per masked token in predict()
};

class MaskedLmTask : public Task {
 public:
  // Throws oar::Error when `model` is not a BertModel.
  MaskedLmTask(std::shared_ptr<nn::Module> model, MaskedLmOptions o);
  nn::Module& model() override { return *bert_; }
  BertMlmHead& head() { return *head_; }
  // outputs: mlm_logits [M, V] at batch["mlm_positions"].
  Outputs forward(const Batch& batch) override;
  Tensor loss(const Outputs& outputs, const Batch& batch) override;
  std::vector<std::unique_ptr<Metric>> metrics() const override;
  // {text, masked: [{position, truth, top: [ids], scores: [probabilities]}]} per example.
  std::vector<Json> predict(const Outputs& outputs, const Batch& batch) const override;

 private:
  std::shared_ptr<BertModel> bert_;
  std::shared_ptr<BertMlmHead> head_;
  MaskedLmOptions o_;
};

}  // namespace oar::nlp
