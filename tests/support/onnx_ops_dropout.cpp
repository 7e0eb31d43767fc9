// ONNX Dropout on engine/ops/dropout.h, in inference mode only (training draws a random mask
// that cannot match ONNX's generator).
#include "engine/ops/dropout.h"
#include "tests/support/onnx_ops.h"

namespace oar::onnx {

void register_dropout_onnx_ops(OpRegistry& r) {
  using Tensors = std::vector<Tensor>;
  r.add("Dropout", [](const Node& n, const Tensors& in, int64_t opset) -> Tensors {
    const Tensor& x = required(n, in, 0);
    double ratio = 0.5;
    bool training = false;
    if (opset < 12) {
      ratio = n.get_float("ratio", 0.5f);
      training = opset < 7 && n.get_int("is_test", 0) == 0;
    } else {
      if (Tensor t = input_or_none(in, 1); t.defined()) ratio = t.item_double();
      if (Tensor t = input_or_none(in, 2); t.defined()) training = t.item_double() != 0;
    }
    if (training && ratio > 0) skip(n, "training mode draws a random mask");
    // The mask is bool from opset 10, the input type before.
    return {dropout(x, ratio, false), ones(x.shape(), opset < 10 ? x.dtype() : DType::boolean)};
  });
}

}  // namespace oar::onnx
