#include "video/models/stnet.h"

#include "engine/core/error.h"
#include "engine/ops.h"

namespace oar::video {

namespace {

VideoResNetOptions stnet_backbone(const StNetOptions& o) {
  OAR_CHECK(o.seglen >= 1, "stnet: seglen must be >= 1, got ", o.seglen);
  OAR_CHECK(!o.backbone.conv3d && o.backbone.shift_segments == 0,
            "stnet: the backbone is a plain 2D ResNet");
  VideoResNetOptions b = o.backbone;
  b.in_channels = 3 * o.seglen;
  return b;
}

// Paddle initialises StNet's added convs with MSRA (He) and zero bias, BN gamma 1 beta 0.
template <typename ConvT>
std::shared_ptr<ConvT> head_conv(int64_t in, int64_t out, std::vector<int64_t> kernel,
                                 std::vector<int64_t> padding, int64_t groups, Generator* gen) {
  nn::ConvOptions co;
  co.padding = std::move(padding);
  co.groups = groups;
  co.bias = true;
  auto c = std::make_shared<ConvT>(in, out, std::move(kernel), co, gen);
  Generator& g = gen ? *gen : default_generator();
  nn::init::kaiming_normal_(c->weight, g, 0.0, nn::init::FanMode::fan_in, "relu");
  nn::init::zeros_(c->bias);
  return c;
}

}  // namespace

TemporalBlock::TemporalBlock(int64_t channels, Generator* gen) {
  conv = register_module("conv",
                         head_conv<nn::Conv3d>(channels, channels, {3, 1, 1}, {1, 0, 0}, 1, gen));
  bn = register_module("bn", std::make_shared<nn::BatchNorm3d>(channels));
}

Tensor TemporalBlock::forward_segments(const Tensor& x, int64_t seg_num) {
  const int64_t n = x.size(0) / seg_num, c = x.size(1), h = x.size(2), w = x.size(3);
  const Tensor v = x.reshape({n, seg_num, c, h, w}).permute({0, 2, 1, 3, 4}).contiguous();
  const Tensor y = (*bn)(relu((*conv)(v))) + v;
  return y.permute({0, 2, 1, 3, 4}).contiguous().reshape({n * seg_num, c, h, w});
}

TemporalXception::TemporalXception(int64_t in, int64_t out, Generator* gen) {
  bn = register_module("bn", std::make_shared<nn::BatchNorm2d>(in));
  att_conv = register_module("att_conv", head_conv<nn::Conv2d>(in, in, {3, 1}, {1, 0}, in, gen));
  att_2 = register_module("att_2", head_conv<nn::Conv2d>(in, out, {1, 1}, {0, 0}, 1, gen));
  bndw = register_module("bndw", std::make_shared<nn::BatchNorm2d>(out));
  att1 = register_module("att1", head_conv<nn::Conv2d>(out, out, {3, 1}, {1, 0}, out, gen));
  att1_2 = register_module("att1_2", head_conv<nn::Conv2d>(out, out, {1, 1}, {0, 0}, 1, gen));
  dw = register_module("dw", head_conv<nn::Conv2d>(in, out, {1, 1}, {0, 0}, 1, gen));
  bn2 = register_module("bn2", std::make_shared<nn::BatchNorm2d>(out));
}

Tensor TemporalXception::forward(const Tensor& x) {
  const Tensor b = (*bn)(x);
  Tensor a = relu((*bndw)((*att_2)((*att_conv)(b))));
  a = (*att1_2)((*att1)(a));
  return relu((*bn2)((*dw)(b) + a));
}

StNet::StNet(const StNetOptions& o, Generator* gen)
    : VideoResNet(stnet_backbone(o), gen), options(o) {
  OAR_CHECK(o.num_classes >= 1, "stnet: num_classes must be >= 1");
  options.backbone.in_channels = 3 * o.seglen;
  temporal2_ =
      register_module("temporal2", std::make_shared<TemporalBlock>(stage_channels(1), gen));
  temporal3_ =
      register_module("temporal3", std::make_shared<TemporalBlock>(stage_channels(2), gen));
  const int64_t f = feature_channels();
  xception_ = register_module("xception", std::make_shared<TemporalXception>(f, f / 2, gen));
  fc_ = register_module("fc", std::make_shared<nn::Linear>(f / 2, o.num_classes, true, gen));
}

Tensor StNet::super_images(const Tensor& x) const {
  OAR_CHECK(x.dim() == 5 && x.size(2) == 3, name(), ": input must be clips [N, T, 3, H, W], got ",
            shape_str(x.shape()));
  OAR_CHECK(x.size(1) % options.seglen == 0, name(), ": T = ", x.size(1),
            " frames is not a multiple of seglen ", options.seglen);
  const int64_t seg = x.size(1) / options.seglen;
  // Frames t = s * seglen + l land in channels 3 l .. 3 l + 2 of segment s (Paddle's reshape).
  return x.reshape({x.size(0) * seg, 3 * options.seglen, x.size(3), x.size(4)});
}

Tensor StNet::forward(const Tensor& x) {
  Tensor h = super_images(x);
  const int64_t n = x.size(0), seg = x.size(1) / options.seglen;
  h = stem(h);
  h = stage(0, h);
  h = temporal2_->forward_segments(stage(1, h), seg);
  h = temporal3_->forward_segments(stage(2, h), seg);
  h = stage(3, h);
  const int64_t f = feature_channels();
  // [N*seg, F, 1, 1] -> [N, F, seg, 1]
  h = global_avg_pool(h)
          .reshape({n, seg, f})
          .permute({0, 2, 1})
          .contiguous()
          .reshape({n, f, seg, 1});
  h = (*xception_)(h);                        // [N, F/2, seg, 1]
  h = amax(h.reshape({n, f / 2, seg}), {2});  // temporal max pool
  return (*fc_)(h);
}

}  // namespace oar::video
