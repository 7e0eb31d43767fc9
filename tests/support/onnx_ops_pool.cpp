// ONNX MaxPool, AveragePool, GlobalAveragePool and GlobalMaxPool on engine/ops/pool.h.
#include "engine/ops/pool.h"
#include "tests/support/onnx_ops.h"

namespace oar::onnx {

namespace {
using Tensors = std::vector<Tensor>;

PoolParams pool_params(const Node& n, const Tensor& x, bool max) {
  const size_t k = static_cast<size_t>(x.dim() - 2);
  PoolParams p;
  p.kernel = n.get_ints("kernel_shape");
  OAR_CHECK(p.kernel.size() == k, "onnx: ", n.op_type, ": kernel_shape has ", p.kernel.size(),
            " dims for ", k, " spatial dims");
  p.stride = n.get_ints("strides", std::vector<int64_t>(k, 1));  // ONNX default 1, not the kernel
  p.dilation = n.get_ints("dilations", std::vector<int64_t>(k, 1));
  if (!max && p.dilation != std::vector<int64_t>(k, 1)) skip(n, "dilated average pooling");
  p.padding = spatial_pads(n, Shape(x.shape().begin() + 2, x.shape().end()), p.kernel, p.stride,
                           p.dilation);
  p.ceil_mode = n.get_int("ceil_mode", 0) != 0;
  p.count_include_pad = n.get_int("count_include_pad", 0) != 0;
  if (!max) p.dilation.clear();
  return p;
}
}  // namespace

void register_pool_onnx_ops(OpRegistry& r) {
  r.add("MaxPool", [](const Node& n, const Tensors& in, int64_t) -> Tensors {
    if (n.outputs.size() > 1 && !n.outputs[1].empty()) skip(n, "the Indices output");
    const Tensor& x = required(n, in, 0);
    return {max_pool(x, pool_params(n, x, true))};
  });
  r.add("AveragePool", [](const Node& n, const Tensors& in, int64_t) -> Tensors {
    const Tensor& x = required(n, in, 0);
    return {avg_pool(x, pool_params(n, x, false))};
  });
  r.add("GlobalAveragePool", [](const Node& n, const Tensors& in, int64_t) -> Tensors {
    return {global_avg_pool(required(n, in, 0))};
  });
  r.add("GlobalMaxPool", [](const Node& n, const Tensors& in, int64_t) -> Tensors {
    return {global_max_pool(required(n, in, 0))};
  });
}

}  // namespace oar::onnx
