#pragma once
// What `oar video extract` and `oar video-tag` share: a trained model loaded from its resolved
// config and checkpoint onto a device, the preprocessing its config asks for at inference, the
// frames a feature extractor reads, and per-frame features of a 2D frame model (the global-average
// pooled backbone output, before dropout, consensus and the classifier, as VideoTag's extractor):
// TSN, TSM (over windows of consecutive frames) or an image-registry ResNet.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/config/config.h"
#include "engine/core/device.h"
#include "engine/core/generator.h"
#include "engine/nn/module.h"
#include "readers/image/transform.h"
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
  readers::TransformList image_transforms;  // image models: per-frame image transforms
};
ClipPreprocess clip_preprocess(const Config& model_config);
// The same for an image model (vision registry): data.<mode>.decode_size when given, and
// data.<mode>.transforms read as per-image transforms (`oar list transforms`), frame by frame.
ClipPreprocess image_preprocess(const Config& model_config);

// The device of `--device cpu|cuda|cuda:N` for inference; an Error naming the flag when this
// build has no CUDA or the GPU is not there.
Device inference_device(const std::string& flag);

struct LoadedModel {
  Config config;  // the resolved config it was built from
  std::shared_ptr<nn::Module> module;
  Device device;  // where the module's parameters live; inputs go there, outputs come back
};
// Builds the config's `model` section from the model registry (video and image models alike),
// loads `checkpoint` (a checkpoint directory holding model.safetensors, or a .safetensors file)
// strictly by name and moves the module to `device`; the module is in eval mode. Errors name the
// config key or the checkpoint file.
LoadedModel load_model(Config config, const std::string& checkpoint, Device device = Device::cpu());

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

// Per-frame features from a 2D frame model with a pooled-feature output:
//  - tsn: each frame on its own (a one-segment clip);
//  - tsm: windows of window() consecutive selected frames (the config's data.<mode>.seg_num,
//    else 8) as one clip, so the temporal shift sees the frame's neighbours as in training; the
//    last window of a video may be shorter;
//  - the image registry's ResNets (resnet18..152, _vd, _cifar): each frame on its own, with
//    the image preprocessing of image_preprocess().
// Models that mix frames in other ways (StNet, Non-local) or have no single pooled feature
// (MobileNet, VGG, the sequence models) are errors naming model.name and these choices.
class FrameFeatureExtractor {
 public:
  enum class Kind { tsn, tsm, image_resnet };
  explicit FrameFeatureExtractor(LoadedModel model);
  const ClipPreprocess& preprocess() const { return preprocess_; }
  Kind kind() const { return kind_; }
  int64_t feature_dim() const;
  // Frames that go through the model together (TSM's window; 1 otherwise). Callers that feed
  // frames in chunks keep chunks a multiple of it, so windows do not depend on the chunking.
  int64_t window() const { return window_; }
  // frames [n, C, H, W] (preprocessed, on the CPU) -> f32 [n, feature_dim()] on the CPU, about
  // batch_frames frames per model call.
  Tensor features(const Tensor& frames, int64_t batch_frames = 16);
  const LoadedModel& model() const { return model_; }

 private:
  LoadedModel model_;
  ClipPreprocess preprocess_;
  Kind kind_ = Kind::tsn;
  int64_t window_ = 1;
};

}  // namespace oar::video
