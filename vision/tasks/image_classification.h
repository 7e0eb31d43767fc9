#pragma once
// Image classification: logits from a model over batch["image"], cross entropy (optional label
// smoothing) against batch["label"], top-1/top-5 accuracy and per-class P/R/F1, and top-k
// predictions with class names.
#include <memory>
#include <string>
#include <vector>

#include "engine/nn/module.h"
#include "engine/train/task.h"

namespace oar::vision {

struct ImageClassificationOptions {
  int64_t num_classes = 10;
  double label_smoothing = 0.0;
  int64_t topk = 5;
  std::vector<std::string> class_names;  // empty: class indices are printed
};

class ImageClassificationTask : public Task {
 public:
  ImageClassificationTask(std::shared_ptr<nn::Module> model, ImageClassificationOptions o);
  nn::Module& model() override { return *model_; }
  Outputs forward(const Batch& batch) override;
  Tensor loss(const Outputs& outputs, const Batch& batch) override;
  std::vector<std::unique_ptr<Metric>> metrics() const override;
  std::vector<Json> predict(const Outputs& outputs, const Batch& batch) const override;

 private:
  std::shared_ptr<nn::Module> model_;
  ImageClassificationOptions o_;
};

}  // namespace oar::vision
