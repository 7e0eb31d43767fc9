#pragma once
// The interface of the feature-sequence video classifiers (Attention LSTM, Attention Cluster,
// NeXtVLAD): they read per-frame features of several modalities (YouTube-8M: `rgb` [N, T, 1024]
// and `audio` [N, T, 128]) padded to a common T, with the number of real frames per video, and
// return multi-label logits [N, num_classes] (sigmoid + BCE belong to the task).
#include <cstdint>
#include <string>
#include <vector>

#include "engine/nn/module.h"

namespace oar {
struct Batch;
}

namespace oar::video {

// What every sequence model is built from besides its own sizes.
struct SequenceModelOptions {
  std::vector<std::string> feature_names = {"rgb", "audio"};  // modality order of forward()
  std::vector<int64_t> feature_dims = {1024, 128};
  int64_t num_classes = 3862;
  double drop_rate = 0.5;
};

// One batch, checked: features with every frame at or past its video's length set to zero
// (so padding values, even NaN, never reach a computation), and the masks derived from lengths.
struct SequenceBatch {
  std::vector<Tensor> features;       // modality i: f32 [N, T, feature_dims[i]]
  Tensor lengths;                     // i64 [N] on the features' device
  Tensor valid;                       // bool [N, T]: frame t of video n is real
  std::vector<int64_t> host_lengths;  // lengths on the host
  int64_t batch = 0, frames = 0;
};

class SequenceModel : public nn::Module {
 public:
  // features: one tensor per modality in feature_names() order, each [N, T, feature_dims[i]]
  // (floating, one N and T for all); lengths: integer [N], 1 <= lengths[n] <= T. Frames at or
  // past lengths[n] are padding and do not influence the output. Returns logits
  // [N, num_classes]. Throws oar::Error naming the model and the bad argument.
  Tensor forward(const std::vector<Tensor>& features, const Tensor& lengths);
  // The YouTube-8M pair: forward({rgb, audio}, lengths).
  Tensor forward(const Tensor& rgb, const Tensor& audio, const Tensor& lengths) {
    return forward(std::vector<Tensor>{rgb, audio}, lengths);
  }
  // From a reader's batch: the fields named by feature_names() and the lengths in `length_field`
  // (the `video_features` reader's "length"). A missing field is an Error listing the fields.
  Tensor forward(const Batch& batch, const std::string& length_field = "length");
  // Single-modality models only: x [N, T, D], every frame real. Otherwise an Error saying to
  // call forward(features, lengths).
  Tensor forward(const Tensor& x) override;

  const std::vector<std::string>& feature_names() const { return options_.feature_names; }
  const std::vector<int64_t>& feature_dims() const { return options_.feature_dims; }
  int64_t num_classes() const { return options_.num_classes; }
  void describe(std::ostream& os) const override;

 protected:
  // Checks the options (throws oar::Error naming `model`, the registered name).
  SequenceModel(const std::string& model, SequenceModelOptions options);
  // The model proper, on a checked batch.
  virtual Tensor classify(const SequenceBatch& batch) = 0;

  SequenceModelOptions options_;
};

// softmax over time (dim 1) of scores [N, T, K], with padded frames given weight exactly 0.
Tensor masked_time_softmax(const Tensor& scores, const Tensor& valid);

}  // namespace oar::video
