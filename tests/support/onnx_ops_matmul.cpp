// ONNX MatMul and Gemm on engine/ops/matmul.h.
#include "engine/ops/matmul.h"
#include "tests/support/onnx_ops.h"

namespace oar::onnx {

void register_matmul_onnx_ops(OpRegistry& r) {
  using Tensors = std::vector<Tensor>;
  r.add("MatMul", [](const Node& n, const Tensors& in, int64_t) -> Tensors {
    return {matmul(required(n, in, 0), required(n, in, 1))};
  });
  r.add("Gemm", [](const Node& n, const Tensors& in, int64_t opset) -> Tensors {
    if (opset < 7 && n.get_int("broadcast", 1) == 0) skip(n, "broadcast=0");
    return {gemm(required(n, in, 0), required(n, in, 1), input_or_none(in, 2),
                 n.get_float("alpha", 1.0f), n.get_float("beta", 1.0f), n.get_int("transA", 0) != 0,
                 n.get_int("transB", 0) != 0)};
  });
}

}  // namespace oar::onnx
