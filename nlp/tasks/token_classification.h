#pragma once
// Token classification (NER) on a text encoder: sequence output -> dropout -> linear emissions
// per token; each word is scored at its first sub-token (batch["word_pos"], from the
// tagged-text reader) and a pluggable head (softmax now; a CRF plugs in through
// nlp/heads/token_head.h) gives the loss and the decoded tags. Predictions map each word's tag
// back to the words' character spans, and chunks of tags to entity spans of the original text.
#include <memory>
#include <string>
#include <vector>

#include "engine/nn.h"
#include "engine/train/task.h"
#include "nlp/heads/token_head.h"
#include "nlp/models/bert.h"

namespace oar::nlp {

struct TokenClassificationOptions {
  std::vector<std::string> labels;  // tag names in id order; must contain "O"
  std::string head = "softmax";
  double dropout = 0.1;
  uint64_t init_seed = 0;
};

// An entity of a prediction: `type` over code points [start, end) of the text.
struct EntitySpan {
  std::string type;
  int64_t start = 0, end = 0;
  std::string text;
};

// Chunks of word tags turned into character spans: `spans` are the words' code-point ranges in
// `text` (a chunk runs from its first word's start to its last word's end).
std::vector<EntitySpan> entity_spans(const std::vector<std::string>& word_tags,
                                     const std::vector<std::pair<int64_t, int64_t>>& spans,
                                     const std::string& text);

class TokenClassificationTask : public Task {
 public:
  // Throws oar::Error when `model` is not a TextEncoder, the labels lack "O" or are not chunk
  // tags, or the head is unknown.
  TokenClassificationTask(std::shared_ptr<nn::Module> model, TokenClassificationOptions o);
  nn::Module& model() override { return *encoder_; }
  // outputs: emissions [N, Wc, C] (packed words), word_pred [N, W] (tag ids of every word; O
  // where a word has no token; -1 at padding)
  Outputs forward(const Batch& batch) override;
  Tensor loss(const Outputs& outputs, const Batch& batch) override;
  // chunk precision/recall/F1 and word-level accuracy, macro/micro P/R/F1 (O excluded)
  std::vector<std::unique_ptr<Metric>> metrics() const override;
  // {text, tags: [per word], entities: [{type, start, end, text}], (gold_entities)} per sentence
  std::vector<Json> predict(const Outputs& outputs, const Batch& batch) const override;

 private:
  std::shared_ptr<TextEncoder> encoder_;
  std::shared_ptr<nn::Dropout> dropout_;
  std::shared_ptr<nn::Linear> classifier_;
  std::shared_ptr<TokenHead> head_;
  TokenClassificationOptions o_;
  int64_t o_id_ = 0;
};

}  // namespace oar::nlp
