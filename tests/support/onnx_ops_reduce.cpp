// ONNX ReduceSum, ReduceMean, ReduceSumSquare, ReduceL1 and ReduceLogSum on engine/ops/reduce.h.
#include "engine/ops/binary.h"
#include "engine/ops/reduce.h"
#include "engine/ops/unary.h"
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
    if (!is_floating(x.dtype()))
      skip(n, std::string("integer mean (") + dtype_name(x.dtype()) + ")");
    return {mean(x, a.dims, a.keepdims)};
  });
  // sum(f(x)) then g, for the composed reductions (axes became an input in opset 18).
  auto composed = [&r](const char* op, Tensor (*f)(const Tensor&), Tensor (*g)(const Tensor&)) {
    r.add(op, [f, g](const Node& n, const Tensors& in, int64_t opset) -> Tensors {
      const Tensor& x = required(n, in, 0);
      const ReduceAxes a = reduce_axes(n, in, opset, 18);
      Tensor y = f ? f(x) : x;
      if (!a.identity) y = sum(y, a.dims, a.keepdims).to(x.dtype());
      return {g ? g(y) : y};
    });
  };
  composed("ReduceSumSquare", square, nullptr);
  composed("ReduceL1", abs, nullptr);
  composed("ReduceLogSum", nullptr, log);
}

}  // namespace oar::onnx
