// ONNX ReduceSum and ReduceMean on engine/ops/reduce.h.
#include "engine/ops/reduce.h"
#include "tests/support/onnx_ops.h"

namespace oar::onnx {

void register_reduce_onnx_ops(OpRegistry& r) {
  using Tensors = std::vector<Tensor>;
  r.add("ReduceSum", [](const Node& n, const Tensors& in, int64_t opset) -> Tensors {
    const Tensor& x = required(n, in, 0);
    const ReduceAxes a = reduce_axes(n, in, opset, 13);
    if (a.identity) return {x};
    // Integer sums accumulate in i64; ONNX keeps the input's type.
    return {sum(x, a.dims, a.keepdims).to(x.dtype())};
  });
  r.add("ReduceMean", [](const Node& n, const Tensors& in, int64_t opset) -> Tensors {
    const Tensor& x = required(n, in, 0);
    const ReduceAxes a = reduce_axes(n, in, opset, 18);
    if (a.identity) return {x};
    if (!is_floating(x.dtype())) skip(n, std::string("integer mean (") + dtype_name(x.dtype()) + ")");
    return {mean(x, a.dims, a.keepdims)};
  });
}

}  // namespace oar::onnx
