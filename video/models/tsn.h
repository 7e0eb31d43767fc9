#pragma once
// TSN (Wang et al. 2016, "Temporal Segment Networks"; PaddleVideo's tsn_res_model.py): a 2D
// ResNet on every sampled frame, global average pool, dropout, average consensus over the
// segments, fc. Order-free by design: permuting the frames of a clip leaves the logits unchanged.
#include <memory>
#include <string>

#include "video/models/video_resnet.h"

namespace oar::video {

struct TsnOptions {
  VideoResNetOptions backbone;  // 2D
  int64_t num_classes = 400;
  double dropout = 0.0;  // on each segment's pooled feature, before the consensus
};

class Tsn : public VideoResNet {
 public:
  Tsn(const TsnOptions& o, Generator* gen);
  // x [N, T, C, H, W] (T segments, RGB) -> logits [N, num_classes]; T may differ between
  // training and testing (PaddleVideo tests TSN on 7 segments after training on 3).
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "Tsn"; }
  // Per-segment pooled features [N, T, feature_channels()] (before dropout and consensus).
  Tensor segment_features(const Tensor& x);

  TsnOptions options;

 protected:
  std::shared_ptr<nn::Dropout> dropout_;
  std::shared_ptr<nn::Linear> fc_;
};

}  // namespace oar::video
