#pragma once
// Channels-last activations for the CPU convolutions and pools (defined in engine/ops/conv.cpp).
#include "engine/tensor/tensor.h"

namespace oar {

// Channels-last: a 4-D [N, C, H, W] tensor whose memory is NHWC (strides exactly
// {H W C, 1, W C, C}). On the CPU a 2-D convolution of a channels-last input writes a
// channels-last output, and max/avg pooling outside autograd keeps it: oneDNN's NHWC kernels run
// on the tensors as they are, with no reorder in or out. A CNN's inference trunk that starts
// channels-last (to_channels_last on its input) so skips two activation reorders per convolution.
// Every other op takes such a tensor as any strided one.
bool is_channels_last(const Tensor& t);
// t in channels-last layout (t itself when it already is one). Differentiable; t must be 4-D.
Tensor to_channels_last(const Tensor& t);
// An uninitialised channels-last tensor of shape [N, C, H, W].
Tensor empty_channels_last(const Shape& shape, DType dtype, Device device);

}  // namespace oar
