// ONNX ReduceMax, ReduceMin, ArgMax and ArgMin on engine/ops/minmax.h.
#include "engine/ops/minmax.h"
#include "tests/support/onnx_ops.h"

namespace oar::onnx {

void register_minmax_onnx_ops(OpRegistry& r) {
  using Tensors = std::vector<Tensor>;
  r.add("ReduceMax", [](const Node& n, const Tensors& in, int64_t opset) -> Tensors {
    const ReduceAxes a = reduce_axes(n, in, opset, 18);
    if (a.identity) return {required(n, in, 0)};
    return {amax(required(n, in, 0), a.dims, a.keepdims)};
  });
  r.add("ReduceMin", [](const Node& n, const Tensors& in, int64_t opset) -> Tensors {
    const ReduceAxes a = reduce_axes(n, in, opset, 18);
    if (a.identity) return {required(n, in, 0)};
    return {amin(required(n, in, 0), a.dims, a.keepdims)};
  });
  r.add("ArgMax", [](const Node& n, const Tensors& in, int64_t) -> Tensors {
    return {argmax(required(n, in, 0), n.get_int("axis", 0), n.get_int("keepdims", 1) != 0,
                   n.get_int("select_last_index", 0) != 0)};
  });
  r.add("ArgMin", [](const Node& n, const Tensors& in, int64_t) -> Tensors {
    return {argmin(required(n, in, 0), n.get_int("axis", 0), n.get_int("keepdims", 1) != 0,
                   n.get_int("select_last_index", 0) != 0)};
  });
}

}  // namespace oar::onnx
