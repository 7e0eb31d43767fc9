#pragma once
// ImageNet 2D ResNet weights (torchvision's state names: conv1, bn1, layer1.0.conv1, ...) into
// the trunk of a video model, as PaddleVideo's load_pretrain_params does:
//  - same shape: copied (every BN, the 2D convs of TSN/TSM/StNet);
//  - a 3D conv [O, I, kt, kh, kw] from a 2D kernel [O, I, kh, kw]: I3D's inflation, the kernel
//    repeated kt times over time and divided by kt (a clip constant over time then gives the 2D
//    net's response away from the temporal borders);
//  - StNet's conv1 [O, 3 seglen, k, k] from [O, 3, k, k]: averaged over the input channels,
//    divided by seglen and repeated to 3 seglen channels (stnet.py).
// The source's `fc.*` is ignored (the classes differ); the heads (fc, temporal blocks, Xception,
// non-local blocks) keep their initialisation.
#include <map>
#include <string>

#include "engine/tensor/tensor.h"
#include "video/models/video_resnet.h"

namespace oar::video {

// Every trunk entry must be in `state` with a shape that maps; throws an Error listing every
// missing or unmappable entry otherwise (nothing is copied then). Returns the entries copied.
int64_t load_2d_resnet(VideoResNet& model, const std::map<std::string, Tensor>& state);

// The same from a safetensors file; errors name the file.
int64_t load_2d_resnet_file(VideoResNet& model, const std::string& path);

// One 2D tensor mapped to the video shape `target` by the rules above; throws when none applies.
Tensor map_2d_weight(const std::string& name, const Tensor& src, const Shape& target);

}  // namespace oar::video
