// ONNX Gather, GatherElements, ScatterElements (and the older Scatter) on engine/ops/index.h.
#include "engine/ops/binary.h"
#include "engine/ops/index.h"
#include "engine/ops/minmax.h"
#include "tests/support/onnx_ops.h"

namespace oar::onnx {

namespace {
using Tensors = std::vector<Tensor>;

// ONNX allows negative indices counting from the end of `dim`.
Tensor wrap_indices(const Tensor& idx, int64_t size) {
  return add(idx, mul(lt(idx, 0.0).to(idx.dtype()), static_cast<double>(size))).to(DType::i64);
}

Tensor scatter_onnx(const Node& n, const Tensors& in) {
  const Tensor& x = required(n, in, 0);
  const int64_t axis = wrap_dim(n.get_int("axis", 0), x.dim(), n.op_type.c_str());
  const Tensor idx = wrap_indices(required(n, in, 1), x.size(axis));
  const Tensor& updates = required(n, in, 2);
  const std::string reduction = n.get_string("reduction", "none");
  if (reduction == "add") return scatter_add(x, axis, idx, updates);
  if (reduction != "none") skip(n, "reduction='" + reduction + "'");
  // Replacement = x where nothing lands + the sum of what lands, exact without duplicates.
  if (x.dtype() == DType::boolean) skip(n, "bool data");
  const Tensor hits = scatter_add(zeros_like(x), axis, idx, ones_like(updates));
  if (hits.numel() > 0 && amax(hits).item_double() > 1)
    skip(n, "duplicate indices without a reduction");
  return add(mul(x, eq(hits, 0.0).to(x.dtype())), scatter_add(zeros_like(x), axis, idx, updates));
}
}  // namespace

void register_index_onnx_ops(OpRegistry& r) {
  r.add("Gather", [](const Node& n, const Tensors& in, int64_t) -> Tensors {
    return {take_along(required(n, in, 0), n.get_int("axis", 0), required(n, in, 1))};
  });
  r.add("GatherElements", [](const Node& n, const Tensors& in, int64_t) -> Tensors {
    const Tensor& x = required(n, in, 0);
    const int64_t axis = wrap_dim(n.get_int("axis", 0), x.dim(), "GatherElements");
    return {gather(x, axis, wrap_indices(required(n, in, 1), x.size(axis)))};
  });
  r.add("ScatterElements",
        [](const Node& n, const Tensors& in, int64_t) -> Tensors { return {scatter_onnx(n, in)}; });
  r.add("Scatter",
        [](const Node& n, const Tensors& in, int64_t) -> Tensors { return {scatter_onnx(n, in)}; });
}

}  // namespace oar::onnx
