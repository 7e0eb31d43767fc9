// ONNX Softmax and LogSoftmax on engine/ops/softmax.h.
#include "engine/ops/softmax.h"
#include "tests/support/onnx_ops.h"

namespace oar::onnx {

namespace {
using Tensors = std::vector<Tensor>;

// Before opset 13 the input is coerced to 2-D at `axis` (default 1) and normalised over the
// flattened trailing block; from 13 on, over the one dimension `axis` (default -1).
Tensor softmax_onnx(const Node& n, const Tensor& x, int64_t opset, bool log) {
  auto f = log ? log_softmax : softmax;
  if (opset >= 13) return f(x, n.get_int("axis", -1));
  const int64_t axis = x.dim() == 0 ? 0 : wrap_dim(n.get_int("axis", 1), x.dim(), "Softmax");
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < x.dim(); ++d) (d < axis ? outer : inner) *= x.size(d);
  return f(x.reshape({outer, inner}), 1).reshape(x.shape());
}
}  // namespace

void register_softmax_onnx_ops(OpRegistry& r) {
  r.add("Softmax", [](const Node& n, const Tensors& in, int64_t opset) -> Tensors {
    return {softmax_onnx(n, required(n, in, 0), opset, false)};
  });
  r.add("LogSoftmax", [](const Node& n, const Tensors& in, int64_t opset) -> Tensors {
    return {softmax_onnx(n, required(n, in, 0), opset, true)};
  });
}

}  // namespace oar::onnx
