// ONNX SoftmaxCrossEntropyLoss and NegativeLogLikelihoodLoss on engine/ops/loss.h.
#include "engine/ops/loss.h"
#include "engine/ops/softmax.h"
#include "tests/support/onnx_ops.h"

namespace oar::onnx {

void register_loss_onnx_ops(OpRegistry& r) {
  using Tensors = std::vector<Tensor>;
  r.add("SoftmaxCrossEntropyLoss", [](const Node& n, const Tensors& in, int64_t) -> Tensors {
    const Tensor& scores = required(n, in, 0);
    const Tensor labels = required(n, in, 1).to(DType::i64);
    const int64_t ignore = n.get_int("ignore_index", -100);
    const std::string reduction = n.get_string("reduction", "mean");
    Tensor loss = cross_entropy(scores, labels, ignore, 0.0, reduction, input_or_none(in, 2));
    return {loss, log_softmax(scores, 1)};
  });
  r.add("NegativeLogLikelihoodLoss", [](const Node& n, const Tensors& in, int64_t) -> Tensors {
    return {nll_loss(required(n, in, 0), required(n, in, 1).to(DType::i64),
                     n.get_int("ignore_index", -100), n.get_string("reduction", "mean"),
                     input_or_none(in, 2))};
  });
}

}  // namespace oar::onnx
