// ONNX ReduceL2 and ReduceLogSumExp on engine/ops/statistics.h.
#include <numeric>

#include "engine/ops/statistics.h"
#include "tests/support/onnx_ops.h"

namespace oar::onnx {

void register_statistics_onnx_ops(OpRegistry& r) {
  using Tensors = std::vector<Tensor>;
  r.add("ReduceL2", [](const Node& n, const Tensors& in, int64_t opset) -> Tensors {
    const ReduceAxes a = reduce_axes(n, in, opset, 18);
    if (a.identity) return {required(n, in, 0)};
    return {norm(required(n, in, 0), 2.0, a.dims, a.keepdims)};
  });
  r.add("ReduceLogSumExp", [](const Node& n, const Tensors& in, int64_t opset) -> Tensors {
    const Tensor& x = required(n, in, 0);
    ReduceAxes a = reduce_axes(n, in, opset, 18);
    if (a.identity) return {x};
    if (a.dims.empty()) {  // logsumexp takes explicit dims
      a.dims.resize(x.dim());
      std::iota(a.dims.begin(), a.dims.end(), 0);
    }
    return {logsumexp(x, a.dims, a.keepdims)};
  });
}

}  // namespace oar::onnx
