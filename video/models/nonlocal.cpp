#include "video/models/nonlocal.h"

#include <cmath>

#include "engine/core/error.h"
#include "engine/ops.h"

namespace oar::video {

namespace {
std::shared_ptr<nn::Conv3d> pointwise(int64_t in, int64_t out, double std, Generator* gen) {
  nn::ConvOptions co;
  co.bias = true;
  auto c = std::make_shared<nn::Conv3d>(in, out, std::vector<int64_t>{1, 1, 1}, co, gen);
  Generator& g = gen ? *gen : default_generator();
  nn::init::normal_(c->weight, g, 0.0, std);
  nn::init::zeros_(c->bias);
  return c;
}
}  // namespace

NonLocalBlock::NonLocalBlock(int64_t channels, int64_t inner_, Generator* gen, double conv_init_std)
    : inner(inner_) {
  OAR_CHECK(inner >= 1, "non-local block: inner channels must be >= 1");
  theta = register_module("theta", pointwise(channels, inner, conv_init_std, gen));
  phi = register_module("phi", pointwise(channels, inner, conv_init_std, gen));
  g = register_module("g", pointwise(channels, inner, conv_init_std, gen));
  out = register_module("out", pointwise(inner, channels, conv_init_std, gen));
  bn = register_module("bn", std::make_shared<nn::BatchNorm3d>(channels));
  nn::init::zeros_(bn->weight);  // the paper's zero init: the block starts as the identity
}

Tensor NonLocalBlock::forward(const Tensor& x) {
  OAR_CHECK(x.dim() == 5, name(), ": input must be [N, C, T, H, W], got ", shape_str(x.shape()));
  const int64_t n = x.size(0), t = x.size(2), h = x.size(3), w = x.size(4);
  Tensor pooled = x;
  if (h >= 2 && w >= 2) {
    PoolParams p;
    p.kernel = {1, 2, 2};
    p.stride = {1, 2, 2};
    p.padding = {0, 0, 0};
    pooled = max_pool(x, p);
  }
  const Tensor q = (*theta)(x).reshape({n, inner, t * h * w}).transpose(1, 2);  // [N, THW, d]
  const Tensor k = (*phi)(pooled).reshape({n, inner, -1});                      // [N, d, M]
  const Tensor v = (*g)(pooled).reshape({n, inner, -1});                        // [N, d, M]
  const Tensor att = softmax(matmul(q, k) * (1.0 / std::sqrt(static_cast<double>(inner))), 2);
  const Tensor y = matmul(v, att.transpose(1, 2)).reshape({n, inner, t, h, w});  // [N, d, THW]
  return (*bn)((*out)(y)) + x;
}

VideoResNetOptions nonlocal_backbone(bool i3d, VideoResNetOptions b) {
  b.conv3d = true;
  b.shift_segments = 0;
  b.stem_pool_padding = 0;  // Caffe2/Paddle's pool1: 3x3 stride 2, no padding
  b.temporal_pool_after_layer1 = true;
  if (b.blocks.empty()) b.blocks = resnet_blocks(b.depth);
  if (i3d) {
    b.stem_temporal_kernel = 5;
    b.temporal_kernels = i3d_temporal_kernels(b.blocks);
  } else {
    b.stem_temporal_kernel = 1;
    b.temporal_kernels.clear();
  }
  return b;
}

NonLocalNet::NonLocalNet(const NonLocalOptions& o, Generator* gen)
    : VideoResNet(nonlocal_backbone(o.i3d, o.backbone), gen), options(o) {
  OAR_CHECK(o.num_classes >= 1, "nonlocal: num_classes must be >= 1");
  OAR_CHECK(o.layer_mod >= 1, "nonlocal: layer_mod must be >= 1, got ", o.layer_mod);
  options.backbone = backbone_options();
  for (int64_t s : {int64_t{1}, int64_t{2}}) {
    if ((s == 1 && !o.res3_nonlocal) || (s == 2 && !o.res4_nonlocal)) continue;
    const int64_t c = stage_channels(s);
    for (int64_t b = 0; b < num_blocks(s); ++b)
      if (b % o.layer_mod == o.layer_mod - 1)
        block(s, b).attach_nonlocal(std::make_shared<NonLocalBlock>(c, c / 2, gen));
  }
  dropout_ = register_module("dropout", std::make_shared<nn::Dropout>(o.dropout));
  fc_ = register_module("fc",
                        std::make_shared<nn::Linear>(feature_channels(), o.num_classes, true, gen));
  // Paddle: fc N(0, fc_init_std 0.01), zero bias.
  Generator& g = gen ? *gen : default_generator();
  nn::init::normal_(fc_->weight, g, 0.0, 0.01);
  nn::init::zeros_(fc_->bias);
}

Tensor NonLocalNet::to_channels_first(const Tensor& x) {
  OAR_CHECK(x.dim() == 5, "nonlocal: input must be clips [N, T, C, H, W], got ",
            shape_str(x.shape()));
  return x.permute({0, 2, 1, 3, 4}).contiguous();
}

Tensor NonLocalNet::forward(const Tensor& x) {
  Tensor h = features(to_channels_first(x));
  h = global_avg_pool(h).flatten(1);
  return (*fc_)((*dropout_)(h));
}

}  // namespace oar::video
