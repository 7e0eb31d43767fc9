#pragma once
// Span extraction (extractive reading comprehension, BERT's SQuAD head): sequence output ->
// linear to start and end logits per token; loss = mean of the start and end cross entropies
// against the window labels of the squad reader. Answers are decoded across all windows of a
// question (n-best starts x n-best ends, start <= end, at most max_answer_length tokens, both
// inside the context) and cut from the original context by byte offsets. EM/F1 in SQuAD's
// English form or CMRC 2018's Chinese form.
#include <memory>
#include <string>
#include <vector>

#include "engine/nn.h"
#include "engine/train/task.h"
#include "metrics/text.h"
#include "nlp/models/bert.h"

namespace oar::nlp {

struct SpanDecodeOptions {
  int64_t n_best = 20;             // start and end candidates per window, and answers kept
  int64_t max_answer_length = 30;  // tokens
  bool allow_impossible = false;   // SQuAD 2.0: answer "" when the [CLS] score wins
  double null_score_diff_threshold = 0.0;
};

// One window's logits and the context byte offsets of its tokens (-1 outside the context).
struct WindowLogits {
  const float* start = nullptr;
  const float* end = nullptr;
  const int64_t* offset_begin = nullptr;
  const int64_t* offset_end = nullptr;
  int64_t length = 0;
};

struct SpanAnswer {
  std::string text;
  int64_t begin = -1, end = -1;  // bytes of the context
  double score = 0;              // start logit + end logit
};

struct SpanDecoding {
  std::vector<SpanAnswer> nbest;  // best first, distinct spans
  double null_score = 0;          // the smallest [CLS] start + end score over windows
  SpanAnswer answer;              // nbest[0], or "" when impossible wins / nothing is valid
};

SpanDecoding decode_spans(const std::vector<WindowLogits>& windows, const std::string& context,
                          const SpanDecodeOptions& o);

struct SpanExtractionOptions {
  SpanDecodeOptions decode;
  metrics::AnswerMetric::Form form = metrics::AnswerMetric::Form::squad;
  uint64_t init_seed = 0;
};

class SpanExtractionTask : public Task {
 public:
  // Throws oar::Error when `model` is not a TextEncoder.
  SpanExtractionTask(std::shared_ptr<nn::Module> model, SpanExtractionOptions o);
  nn::Module& model() override { return *encoder_; }
  // outputs: start_logits, end_logits [T, L] (T windows)
  Outputs forward(const Batch& batch) override;
  Tensor loss(const Outputs& outputs, const Batch& batch) override;
  // em, f1 (fractions)
  std::vector<std::unique_ptr<Metric>> metrics() const override;
  // {id, question, answer, start (character index in the context, -1: none), score, nbest}
  std::vector<Json> predict(const Outputs& outputs, const Batch& batch) const override;
  // The decoded answer of each example of the batch.
  std::vector<SpanDecoding> decode(const Outputs& outputs, const Batch& batch) const;

 private:
  std::shared_ptr<TextEncoder> encoder_;
  std::shared_ptr<nn::Linear> qa_outputs_;
  SpanExtractionOptions o_;
};

}  // namespace oar::nlp
