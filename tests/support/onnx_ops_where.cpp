// ONNX Where on engine/ops/where.h.
#include "engine/ops/where.h"
#include "tests/support/onnx_ops.h"

namespace oar::onnx {

void register_where_onnx_ops(OpRegistry& r) {
  using Tensors = std::vector<Tensor>;
  r.add("Where", [](const Node& n, const Tensors& in, int64_t) -> Tensors {
    return {where(required(n, in, 0), required(n, in, 1), required(n, in, 2))};
  });
}

}  // namespace oar::onnx
