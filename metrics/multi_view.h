#pragma once
// Single-label top-k accuracy over videos tested with several views (temporal clips x spatial
// crops), as PaddleVideo's multicrop test and MMAction2's `average_clips` do: the softmax scores
// of all views of a video (same batch.meta[i][id_key], else meta "path") are averaged, then the
// video's true class is ranked among the averaged scores. A video's views must agree on its
// label (an error names the video otherwise).
//
// Inputs: logits [N, C] from outputs[logits_key], i64 labels [N] from batch[label_key].
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/train/metric.h"

namespace oar::metrics {

class MultiViewAccuracy : public Metric {
 public:
  explicit MultiViewAccuracy(std::vector<int64_t> ks = {1, 5}, std::string id_key = "video_id",
                             std::string logits_key = "logits", std::string label_key = "label");
  std::string name() const override { return "multi_view_accuracy"; }
  void reset() override;
  void update(const Outputs& outputs, const Batch& batch) override;
  // top<k> for each k, over videos; and num_videos.
  std::vector<std::pair<std::string, double>> compute() const override;
  // The per-video score sums cannot be summed elementwise across ranks (videos differ): throws.
  std::vector<double> state() const override;
  void load_state(const std::vector<double>& s) override;
  // Adds one view's probabilities (what update() does per row after the softmax).
  void add_view(const std::string& video, const float* probs, int64_t c, int64_t label);

 private:
  struct Video {
    std::vector<double> sum;
    int64_t views = 0;
    int64_t label = -1;
  };
  std::vector<int64_t> ks_;
  std::string id_key_, logits_key_, label_key_;
  std::map<std::string, Video> videos_;
};

}  // namespace oar::metrics
