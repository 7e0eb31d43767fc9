// ONNX TopK and CumSum on engine/ops/sort.h.
#include "engine/ops/sort.h"
#include "tests/support/onnx_ops.h"

namespace oar::onnx {

void register_sort_onnx_ops(OpRegistry& r) {
  using Tensors = std::vector<Tensor>;
  r.add("TopK", [](const Node& n, const Tensors& in, int64_t opset) -> Tensors {
    // k is an attribute before opset 10, a 1-element input after.
    const int64_t k = opset < 10 ? n.get_int("k", 0) : int_values(required(n, in, 1)).at(0);
    auto [values, indices] = topk(required(n, in, 0), k, n.get_int("axis", -1),
                                  n.get_int("largest", 1) != 0, n.get_int("sorted", 1) != 0);
    return {values, indices};
  });
  r.add("CumSum", [](const Node& n, const Tensors& in, int64_t) -> Tensors {
    const int64_t axis = int_values(required(n, in, 1)).at(0);
    return {cumsum(required(n, in, 0), axis, n.get_int("exclusive", 0) != 0,
                   n.get_int("reverse", 0) != 0)};
  });
}

}  // namespace oar::onnx
