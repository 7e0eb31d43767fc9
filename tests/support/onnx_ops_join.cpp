// ONNX Concat, Split, Pad and Tile on engine/ops/join.h.
#include "engine/ops/join.h"
#include "tests/support/onnx_ops.h"

namespace oar::onnx {

namespace {
using Tensors = std::vector<Tensor>;

Tensors split_onnx(const Node& n, const Tensors& in, int64_t opset) {
  const Tensor& x = required(n, in, 0);
  const int64_t axis = wrap_dim(n.get_int("axis", 0), x.dim(), "Split");
  std::vector<int64_t> sizes =
      opset < 13 ? n.get_ints("split")
                 : (input_or_none(in, 1).defined() ? int_values(in[1]) : std::vector<int64_t>{});
  if (!sizes.empty()) return split(x, sizes, axis);
  const int64_t parts =
      n.has("num_outputs") ? n.get_int("num_outputs", 1) : static_cast<int64_t>(n.outputs.size());
  OAR_CHECK(parts > 0, "onnx: Split: no outputs");
  return chunk(x, parts, axis);
}

Tensor pad_onnx(const Node& n, const Tensors& in, int64_t opset) {
  const Tensor& x = required(n, in, 0);
  const std::string mode = n.get_string("mode", "constant");
  if (mode != "constant" && mode != "reflect" && mode != "edge") skip(n, "mode='" + mode + "'");
  std::vector<int64_t> pads;
  double value = 0;
  std::vector<int64_t> axes;
  if (opset < 11) {
    pads = n.get_ints(opset < 2 ? "paddings" : "pads");
    value = n.get_float("value", 0.0f);
  } else {
    pads = int_values(required(n, in, 1));
    if (Tensor v = input_or_none(in, 2); v.defined() && v.numel() > 0) value = v.item_double();
    if (Tensor a = input_or_none(in, 3); a.defined()) axes = int_values(a);
  }
  if (axes.empty())
    for (int64_t d = 0; d < x.dim(); ++d) axes.push_back(d);
  const size_t k = axes.size();
  OAR_CHECK(pads.size() == 2 * k, "onnx: Pad: ", pads.size(), " pads for ", k, " axes");
  // ONNX lists all begins then all ends; pad() wants (begin, end) per dimension.
  std::vector<int64_t> per_dim(2 * x.dim(), 0);
  for (size_t i = 0; i < k; ++i) {
    const int64_t d = wrap_dim(axes[i], x.dim(), "Pad");
    per_dim[2 * d] = pads[i];
    per_dim[2 * d + 1] = pads[k + i];
  }
  return pad(x, per_dim, mode, value);
}
}  // namespace

void register_join_onnx_ops(OpRegistry& r) {
  r.add("Concat", [](const Node& n, const Tensors& in, int64_t) -> Tensors {
    for (const Tensor& t : in) OAR_CHECK(t.defined(), "onnx: Concat: omitted input");
    return {concat(in, n.get_int("axis", 0))};
  });
  r.add("Split", [](const Node& n, const Tensors& in, int64_t opset) -> Tensors {
    return split_onnx(n, in, opset);
  });
  r.add("Pad", [](const Node& n, const Tensors& in, int64_t opset) -> Tensors {
    return {pad_onnx(n, in, opset)};
  });
  r.add("Tile", [](const Node& n, const Tensors& in, int64_t opset) -> Tensors {
    if (opset < 6) skip(n, "opset < 6 (tiles/axis inputs)");
    return {repeat(required(n, in, 0), int_values(required(n, in, 1)))};
  });
}

}  // namespace oar::onnx
