// ONNX Conv on engine/ops/conv.h.
#include "engine/ops/conv.h"
#include "tests/support/onnx_ops.h"

namespace oar::onnx {

void register_conv_onnx_ops(OpRegistry& r) {
  using Tensors = std::vector<Tensor>;
  r.add("Conv", [](const Node& n, const Tensors& in, int64_t) -> Tensors {
    const Tensor& x = required(n, in, 0);
    const Tensor& w = required(n, in, 1);
    const size_t k = static_cast<size_t>(x.dim() - 2);
    ConvParams p;
    std::vector<int64_t> kernel = n.get_ints("kernel_shape");
    if (kernel.empty()) kernel.assign(w.shape().begin() + 2, w.shape().end());
    p.stride = n.get_ints("strides", std::vector<int64_t>(k, 1));
    p.dilation = n.get_ints("dilations", std::vector<int64_t>(k, 1));
    p.groups = n.get_int("group", 1);
    p.padding = spatial_pads(n, Shape(x.shape().begin() + 2, x.shape().end()), kernel, p.stride,
                             p.dilation);
    return {conv(x, w, input_or_none(in, 2), p)};
  });
}

}  // namespace oar::onnx
