#pragma once
// Classification metrics over logits [N, C] (outputs["logits"]) and i64 labels [N]
// (batch["label"]): top-k accuracy, per-class precision/recall/F1 and the confusion matrix.
#include <string>
#include <vector>

#include "engine/train/metric.h"

namespace oar::metrics {

class TopKAccuracy : public Metric {
 public:
  explicit TopKAccuracy(std::vector<int64_t> ks = {1, 5}, std::string logits_key = "logits",
                        std::string label_key = "label");
  std::string name() const override { return "accuracy"; }
  void reset() override;
  void update(const Outputs& outputs, const Batch& batch) override;
  std::vector<std::pair<std::string, double>> compute() const override;
  std::vector<double> state() const override;
  void load_state(const std::vector<double>& s) override;

 private:
  std::vector<int64_t> ks_;
  std::string logits_key_, label_key_;
  std::vector<double> correct_;
  double count_ = 0;
};

// Confusion matrix with per-class precision, recall, F1 and their macro averages; writes
// confusion_matrix.json (and the class names) into the evaluation directory.
class ConfusionMatrix : public Metric {
 public:
  ConfusionMatrix(int64_t num_classes, std::vector<std::string> class_names = {},
                  std::string logits_key = "logits", std::string label_key = "label");
  std::string name() const override { return "confusion"; }
  void reset() override;
  void update(const Outputs& outputs, const Batch& batch) override;
  std::vector<std::pair<std::string, double>> compute() const override;
  std::vector<double> state() const override { return counts_; }
  void load_state(const std::vector<double>& s) override;
  void write_artifacts(const std::string& dir) const override;
  double count(int64_t truth, int64_t pred) const { return counts_[truth * n_ + pred]; }

 private:
  int64_t n_;
  std::vector<std::string> names_;
  std::string logits_key_, label_key_;
  std::vector<double> counts_;
};

}  // namespace oar::metrics
