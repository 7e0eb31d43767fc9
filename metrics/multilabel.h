#pragma once
// Multi-label video metrics as YouTube-8M's starter code computes them (eval_util.py,
// average_precision_calculator.py), which PaddleVideo's Youtube8mMetrics ports:
//   hit_at_one: fraction of videos whose top-scoring class is a positive;
//   perr:       precision at equal recall rate: per video, the fraction of positives among its
//               top-n classes, n = its number of positives (0 for a video without positives,
//               which still counts in the average); a class only counts when its score is > 0;
//   gap:        global average precision of the top-k (20) (score, label) pairs of every video,
//               pooled and sorted, with the total number of positives of all videos as the
//               recall denominator (so positives outside a video's top k lower it);
//   map:        the mean over all num_classes classes of each class's average precision over
//               the same top-k pairs that fall in that class (denominator: the class's positives
//               in all videos); a class without positives contributes 0, as in YT-8M.
// Ties: scores are ranked descending, equal scores in the order they arrived (videos in order,
// classes by index). YT-8M shuffles tied pairs with a fixed seed first; only ties differ.
//
// Inputs: scores [N, C] from outputs[scores_key] (logits pass through a sigmoid first when
// from_logits, so PERR's "score > 0" means probability > 0, as in PaddleVideo), and a multi-hot
// label [N, C] (any dtype; > 0 is positive) from batch[label_key].
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "engine/train/metric.h"

namespace oar::metrics {

// The building blocks, on row-major [n, c] scores and labels.
double hit_at_one(const float* scores, const float* labels, int64_t n, int64_t c);
double precision_at_equal_recall_rate(const float* scores, const float* labels, int64_t n,
                                      int64_t c);
// AP of (score, is_positive) pairs, ranked by descending score, over `total_positives` positives
// (YT-8M's ap_at_n with n = None). 0 when there are no positives.
double average_precision(std::vector<std::pair<float, bool>> pairs, double total_positives);
// GAP over the top_k classes of each row (YT-8M's calculate_gap).
double global_average_precision(const float* scores, const float* labels, int64_t n, int64_t c,
                                int64_t top_k = 20);

class YouTube8MMetrics : public Metric {
 public:
  explicit YouTube8MMetrics(int64_t num_classes, int64_t top_k = 20, bool from_logits = true,
                            std::string scores_key = "logits", std::string label_key = "label");
  std::string name() const override { return "youtube8m"; }
  void reset() override;
  void update(const Outputs& outputs, const Batch& batch) override;
  // hit_at_one, perr, gap, map
  std::vector<std::pair<std::string, double>> compute() const override;
  // GAP and mAP need every pooled prediction, which ranks cannot sum: throws (evaluate these
  // metrics in one process).
  std::vector<double> state() const override;
  void load_state(const std::vector<double>& s) override;
  // Per-class AP (YT-8M's `aps`), num_classes values.
  std::vector<double> class_average_precisions() const;
  // Writes youtube8m_aps.json (per-class AP) into dir.
  void write_artifacts(const std::string& dir) const override;
  // Feeds rows directly (what update() does after fetching the tensors).
  void add(const float* scores, const float* labels, int64_t n);

 private:
  int64_t c_, top_k_;
  bool from_logits_;
  std::string scores_key_, label_key_;
  double hit_sum_ = 0, perr_sum_ = 0, count_ = 0;
  std::vector<std::pair<float, bool>> global_;              // pooled top-k pairs
  std::vector<std::vector<std::pair<float, bool>>> class_;  // the same, by class
  std::vector<double> class_positives_;
};

}  // namespace oar::metrics
