#include "video/models/tsn.h"

#include "engine/core/error.h"
#include "engine/ops.h"

namespace oar::video {

Tsn::Tsn(const TsnOptions& o, Generator* gen) : VideoResNet(o.backbone, gen), options(o) {
  OAR_CHECK(!o.backbone.conv3d, "tsn: the backbone must be 2D");
  OAR_CHECK(o.num_classes >= 1, "tsn: num_classes must be >= 1");
  dropout_ = register_module("dropout", std::make_shared<nn::Dropout>(o.dropout));
  fc_ = register_module("fc",
                        std::make_shared<nn::Linear>(feature_channels(), o.num_classes, true, gen));
}

Tensor Tsn::segment_features(const Tensor& x) {
  OAR_CHECK(x.dim() == 5, name(), ": input must be clips [N, T, C, H, W], got ",
            shape_str(x.shape()));
  const int64_t n = x.size(0), t = x.size(1);
  Tensor h = features(x.reshape({n * t, x.size(2), x.size(3), x.size(4)}));
  return global_avg_pool(h).reshape({n, t, feature_channels()});
}

Tensor Tsn::forward(const Tensor& x) {
  const Tensor f = segment_features(x);
  // Average consensus over the segments.
  return (*fc_)(mean((*dropout_)(f), {1}));
}

}  // namespace oar::video
