#pragma once
// Video classification (task `video_classification`), as PaddleVideo's Kinetics and YouTube-8M
// models train and evaluate:
//  - single-label: softmax cross entropy (optional label smoothing) against i64 batch["label"];
//    top-1/top-5 accuracy by default;
//  - multi-label: sigmoid binary cross entropy against a multi-hot f32 batch["label"] [N, C];
//    YouTube-8M's Hit@1, PERR, GAP@20 and mAP by default.
// Frame models (TSN, TSM, StNet, Non-local) take the clip batch["video"] [N, T, C, H, W]; a batch
// with several views per video, [N, V, T, C, H, W] (temporal clips x spatial crops), is run as
// N*V clips and the views' softmax (sigmoid) scores are averaged per video. Sequence models
// (video/models/sequence_model.h) take the whole batch (per-frame features and lengths).
// Outputs: "scores" [N, C] (probabilities, view-averaged) and "logits" [N, C]; after averaging,
// logits are log(scores) (single-label) or logit(scores) (multi-label), so the loss and every
// metric that reads logits see the averaged scores.
#include <memory>
#include <string>
#include <vector>

#include "engine/config/config.h"
#include "engine/nn/module.h"
#include "engine/train/task.h"

namespace oar::video {

struct VideoClassificationOptions {
  int64_t num_classes = 400;
  bool multi_label = false;
  double label_smoothing = 0.0;
  int64_t topk = 5;                      // labels per prediction record
  std::vector<std::string> class_names;  // empty: records carry class indices only
  std::string input_key = "video";       // the clip field (frame models)
  // Metric sections, each {name: ..., keys}: built through the metric registry for every
  // evaluation. Empty: accuracy (top-1, and top-5 when there are more than 5 classes) or, with
  // multi_label, youtube8m.
  Config metrics;  // holds a list "metrics" of metric sections; undefined: the defaults
};

class VideoClassificationTask : public Task {
 public:
  VideoClassificationTask(std::shared_ptr<nn::Module> model, VideoClassificationOptions o);
  nn::Module& model() override { return *model_; }
  Outputs forward(const Batch& batch) override;
  Tensor loss(const Outputs& outputs, const Batch& batch) override;
  std::vector<std::unique_ptr<Metric>> metrics() const override;
  // Per video: meta (path, frame_indices, ...), "topk" [{class, label, score}] by descending
  // score, and "truth" (class index, or the list of positive classes with multi_label) when the
  // batch has labels.
  std::vector<Json> predict(const Outputs& outputs, const Batch& batch) const override;

  const VideoClassificationOptions& options() const { return o_; }

 private:
  std::shared_ptr<nn::Module> model_;
  VideoClassificationOptions o_;
};

// Per-view logits [N*V, C] (video-major: the V views of video 0 first) -> {averaged scores [N, C],
// logits of the averaged scores [N, C]}; softmax scores, or sigmoid ones with multi_label.
// Differentiable. V == 1 returns the scores of the logits and the logits themselves.
std::pair<Tensor, Tensor> average_views(const Tensor& view_logits, int64_t views, bool multi_label);

// Registers `video_classification` in the task registry (from video::register_components()).
void register_video_tasks();

}  // namespace oar::video
