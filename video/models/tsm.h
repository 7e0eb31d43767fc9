#pragma once
// TSM (Lin et al. 2019, "Temporal Shift Module"; PaddleVideo's tsm_res_model.py): TSN's
// network with a temporal shift of 1/fold_div of the channels each way (video/models/
// temporal_shift.h) at the input of every bottleneck's residual branch (the shortcut is not
// shifted), dropout, average consensus, fc. The shift makes it sensitive to frame order.
#include <string>

#include "video/models/tsn.h"

namespace oar::video {

struct TsmOptions {
  VideoResNetOptions backbone;  // 2D; shift_fold_div applies, shift_segments is set per call
  int64_t num_classes = 400;
  double dropout = 0.5;
};

class Tsm : public Tsn {
 public:
  Tsm(const TsmOptions& o, Generator* gen);
  // x [N, T, C, H, W] -> logits [N, num_classes]; the shift runs over the T segments.
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "Tsm"; }
  // The number of segments the shift runs over in segment_features (forward sets it per call).
  void set_segments(int64_t t);

 private:
  int64_t segments_ = 0;
};

}  // namespace oar::video
