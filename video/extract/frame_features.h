#pragma once
// What `oar video extract` and `oar video-tag` share: a trained video model loaded from its
// resolved config and checkpoint, the preprocessing its config asks for at inference, the frames
// a feature extractor reads, and the per-frame features of a TSN backbone (the global-average
// pooled ResNet output, before dropout, consensus and the classifier, as VideoTag's extractor).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/config/config.h"
#include "engine/core/generator.h"
#include "engine/nn/module.h"
#include "readers/video/clip_transform.h"
#include "readers/video/decoder.h"
#include "readers/video/video_dataset.h"

namespace oar::video {

// The inference preprocessing of a model's config: the first of data.infer, data.test,
// data.valid present (shared `data` keys apply), else the reader's defaults and no transforms.
struct ClipPreprocess {
  std::string mode;                 // which data section it came from ("" when none)
  readers::VideoSampling sampling;  // train = false
  readers::DecodeOptions decode;    // output size from decode_size, codec threads
  readers::ClipTransformList transforms;
};
ClipPreprocess clip_preprocess(const Config& model_config);

struct LoadedModel {
  Config config;  // the resolved config it was built from
  std::shared_ptr<nn::Module> module;
};
// Builds the config's `model` section and loads `checkpoint` (a checkpoint directory holding
// model.safetensors, or a .safetensors file) strictly by name; the module is in eval mode.
// Errors name the config key or the checkpoint file.
LoadedModel load_model(Config config, const std::string& checkpoint);

// Which frames the feature path reads: every `stride`-th frame, or with fps > 0 about fps frames
// per second (the first frame at or after each 1/fps step); when more than max_frames (> 0) are
// selected, max_frames of them evenly spread (VideoTag reads 300 frames a video).
struct FrameSelection {
  double fps = 0;
  int64_t stride = 1;
  int64_t max_frames = 300;
};
// Sorted, distinct frame indices in [0, num_frames). Throws on a bad selection.
std::vector<int64_t> select_frames(int64_t num_frames, double video_fps, const FrameSelection& s);

// uint8 RGB frames -> the preprocessed views: views_to_tensor's [T, C, H, W] (one view) or
// [V, T, C, H, W]. Frames are split into views of `frames_per_view` (0: one view).
Tensor preprocess_clip(const std::vector<readers::VideoFrame>& frames, const ClipPreprocess& p,
                       int64_t frames_per_view, Generator& rng);

// Per-frame features from a TSN model (model name `tsn`; TSM and the others mix frames across
// time, so a frame's feature would depend on its neighbours).
class FrameFeatureExtractor {
 public:
  explicit FrameFeatureExtractor(LoadedModel model);
  const ClipPreprocess& preprocess() const { return preprocess_; }
  int64_t feature_dim() const;
  // frames [n, C, H, W] (preprocessed) -> f32 [n, feature_dim()], in chunks of batch_frames.
  Tensor features(const Tensor& frames, int64_t batch_frames = 16);
  const LoadedModel& model() const { return model_; }

 private:
  LoadedModel model_;
  ClipPreprocess preprocess_;
};

}  // namespace oar::video
