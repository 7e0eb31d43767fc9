#pragma once
// Text classification (BERT's sequence classification): pooled [CLS] -> dropout -> linear
// logits, cross entropy against batch["label"], top-1 accuracy, and per-example predictions.
//
// The head becomes part of the model: its `dropout` and `classifier` children are registered on
// the encoder, so the optimizer, checkpoints (`classifier.weight`) and `oar eval` all see it.
#include <memory>
#include <string>
#include <vector>

#include "engine/nn.h"
#include "engine/train/task.h"
#include "nlp/models/bert.h"

namespace oar::nlp {

struct TextClassificationOptions {
  int64_t num_classes = 2;
  double dropout = 0.1;
  std::vector<std::string> class_names;  // empty: class indices are printed
  uint64_t init_seed = 0;                // the classifier's N(0, 0.02) initialisation
};

class TextClassificationTask : public Task {
 public:
  // Throws oar::Error when `model` is not a TextEncoder (e.g. bert).
  TextClassificationTask(std::shared_ptr<nn::Module> model, TextClassificationOptions o);
  nn::Module& model() override { return *encoder_; }
  // outputs: logits [N, num_classes]
  Outputs forward(const Batch& batch) override;
  Tensor loss(const Outputs& outputs, const Batch& batch) override;
  std::vector<std::unique_ptr<Metric>> metrics() const override;
  // {text_a, (text_b), class, (label), score, (truth)} per example.
  std::vector<Json> predict(const Outputs& outputs, const Batch& batch) const override;

 private:
  std::shared_ptr<TextEncoder> encoder_;
  std::shared_ptr<nn::Dropout> dropout_;
  std::shared_ptr<nn::Linear> classifier_;
  TextClassificationOptions o_;
};

}  // namespace oar::nlp
