#pragma once
// A small VGG-style CNN for small images (MNIST-sized inputs and up): `stages` blocks of
// [conv3x3-BN-ReLU] x2 + 2x2 max pool, doubling the width each stage, then global average
// pooling, dropout and a linear classifier. The quickstart model.
#include <memory>
#include <vector>

#include "engine/nn.h"

namespace oar::vision {

struct SimpleCnnOptions {
  int64_t in_channels = 1;
  int64_t num_classes = 10;
  int64_t width = 32;    // channels of the first stage
  int64_t stages = 2;
  double dropout = 0.1;
};

class SimpleCnn : public nn::Module {
 public:
  SimpleCnn(const SimpleCnnOptions& o, Generator* gen);
  Tensor forward(const Tensor& x) override;  // [N, C, H, W] -> logits [N, num_classes]
  std::string name() const override { return "SimpleCnn"; }

 private:
  std::shared_ptr<nn::Sequential> features_;
  std::shared_ptr<nn::Dropout> dropout_;
  std::shared_ptr<nn::Linear> fc_;
};

}  // namespace oar::vision
