// ONNX shape operators on tensor views: Reshape, Transpose, Flatten, Squeeze, Unsqueeze, Expand,
// Shape, Size, Slice, and the creation ops Constant, ConstantOfShape and Range.
#include <algorithm>

#include "tests/support/onnx_ops.h"

namespace oar::onnx {

namespace {

using Tensors = std::vector<Tensor>;

// Axes from the attribute (opset < `input_from`) or from input 1.
std::vector<int64_t> axes_of(const Node& n, const Tensors& in, int64_t opset, int64_t input_from) {
  if (opset < input_from) return n.get_ints("axes");
  Tensor t = input_or_none(in, 1);
  return t.defined() ? int_values(t) : std::vector<int64_t>{};
}

Tensor reshape_onnx(const Node& n, const Tensors& in, int64_t opset) {
  const Tensor& x = required(n, in, 0);
  Shape target = opset < 5 ? n.get_ints("shape") : int_values(required(n, in, 1));
  const bool allowzero = n.get_int("allowzero", 0) != 0;
  for (size_t i = 0; i < target.size(); ++i) {
    if (target[i] == 0 && !allowzero) {
      OAR_CHECK(static_cast<int64_t>(i) < x.dim(), "onnx: Reshape: 0 at position ", i,
                " has no input dimension to copy (input ", shape_str(x.shape()), ")");
      target[i] = x.size(static_cast<int64_t>(i));
    }
  }
  return x.reshape(target);
}

Tensor squeeze_onnx(const Node& n, const Tensors& in, int64_t opset) {
  const Tensor& x = required(n, in, 0);
  std::vector<int64_t> axes = axes_of(n, in, opset, 13);
  if (axes.empty()) return x.squeeze();
  for (int64_t& a : axes) {
    a = wrap_dim(a, x.dim(), "Squeeze");
    OAR_CHECK(x.size(a) == 1, "onnx: Squeeze: dimension ", a, " of ", shape_str(x.shape()),
              " is not 1");
  }
  Shape s;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (std::find(axes.begin(), axes.end(), d) == axes.end()) s.push_back(x.size(d));
  return x.reshape(s);
}

Tensor unsqueeze_onnx(const Node& n, const Tensors& in, int64_t opset) {
  const Tensor& x = required(n, in, 0);
  std::vector<int64_t> axes = axes_of(n, in, opset, 13);
  const int64_t rank = x.dim() + static_cast<int64_t>(axes.size());
  for (int64_t& a : axes) a = wrap_dim(a, rank, "Unsqueeze");
  std::sort(axes.begin(), axes.end());
  OAR_CHECK(std::adjacent_find(axes.begin(), axes.end()) == axes.end(),
            "onnx: Unsqueeze: repeated axis");
  Shape s;
  int64_t src = 0;
  for (int64_t d = 0; d < rank; ++d) {
    if (std::binary_search(axes.begin(), axes.end(), d))
      s.push_back(1);
    else
      s.push_back(x.size(src++));
  }
  return x.reshape(s);
}

Tensor slice_onnx(const Node& n, const Tensors& in, int64_t opset) {
  Tensor x = required(n, in, 0);
  std::vector<int64_t> starts, ends, axes, steps;
  if (opset < 10) {
    starts = n.get_ints("starts");
    ends = n.get_ints("ends");
    axes = n.get_ints("axes");
  } else {
    starts = int_values(required(n, in, 1));
    ends = int_values(required(n, in, 2));
    if (Tensor t = input_or_none(in, 3); t.defined()) axes = int_values(t);
    if (Tensor t = input_or_none(in, 4); t.defined()) steps = int_values(t);
  }
  OAR_CHECK(starts.size() == ends.size(), "onnx: Slice: ", starts.size(), " starts but ",
            ends.size(), " ends");
  if (axes.empty())
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  if (steps.empty()) steps.assign(starts.size(), 1);
  for (size_t i = 0; i < starts.size(); ++i) {
    if (steps[i] <= 0) skip(n, "negative steps (Tensor::slice takes positive steps)");
    const int64_t d = wrap_dim(axes[i], x.dim(), "Slice");
    // Clamp first: ONNX uses INT64_MAX/MIN for "to the end", which must not overflow.
    const int64_t size = x.size(d);
    const int64_t s = std::clamp<int64_t>(starts[i], -size, size);
    const int64_t e = std::clamp<int64_t>(ends[i], -size, size);
    x = x.slice(d, s, e, steps[i]);
  }
  return x;
}

Tensor constant_onnx(const Node& n) {
  if (Tensor t = n.get_tensor("value"); t.defined()) return t;
  if (n.has("value_float")) return scalar_tensor(n.get_float("value_float", 0), DType::f32);
  if (n.has("value_int"))
    return scalar_tensor(static_cast<double>(n.get_int("value_int", 0)), DType::i64);
  if (n.has("value_floats")) {
    const auto v = n.get_floats("value_floats");
    return tensor<float>(v, {static_cast<int64_t>(v.size())});
  }
  if (n.has("value_ints")) {
    const auto v = n.get_ints("value_ints");
    return tensor<int64_t>(v, {static_cast<int64_t>(v.size())});
  }
  skip(n, "no value, value_float(s) or value_int(s) attribute (strings and sparse values)");
}

}  // namespace

void register_shape_onnx_ops(OpRegistry& r) {
  r.add("Reshape", [](const Node& n, const Tensors& in, int64_t opset) -> Tensors {
    return {reshape_onnx(n, in, opset)};
  });
  r.add("Transpose", [](const Node& n, const Tensors& in, int64_t) -> Tensors {
    const Tensor& x = required(n, in, 0);
    Shape perm = n.get_ints("perm");
    if (perm.empty())
      for (int64_t d = x.dim() - 1; d >= 0; --d) perm.push_back(d);
    return {x.permute(perm)};
  });
  r.add("Flatten", [](const Node& n, const Tensors& in, int64_t) -> Tensors {
    const Tensor& x = required(n, in, 0);
    int64_t axis = n.get_int("axis", 1);
    if (axis < 0) axis += x.dim();
    OAR_CHECK(axis >= 0 && axis <= x.dim(), "onnx: Flatten: axis ", n.get_int("axis", 1),
              " out of range for rank ", x.dim());
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < x.dim(); ++d) (d < axis ? outer : inner) *= x.size(d);
    return {x.reshape({outer, inner})};
  });
  r.add("Squeeze", [](const Node& n, const Tensors& in, int64_t opset) -> Tensors {
    return {squeeze_onnx(n, in, opset)};
  });
  r.add("Unsqueeze", [](const Node& n, const Tensors& in, int64_t opset) -> Tensors {
    return {unsqueeze_onnx(n, in, opset)};
  });
  r.add("Expand", [](const Node& n, const Tensors& in, int64_t) -> Tensors {
    const Tensor& x = required(n, in, 0);
    // Broadcast both ways: a 1 in the requested shape keeps the input's size.
    const Shape out = broadcast_shapes(x.shape(), int_values(required(n, in, 1)), "Expand");
    return {x.expand(out)};
  });
  r.add("Shape", [](const Node& n, const Tensors& in, int64_t) -> Tensors {
    const Tensor& x = required(n, in, 0);
    const int64_t rank = x.dim();
    int64_t start = n.get_int("start", 0), end = n.get_int("end", rank);
    if (start < 0) start += rank;
    if (end < 0) end += rank;
    start = std::clamp<int64_t>(start, 0, rank);
    end = std::clamp<int64_t>(end, start, rank);
    std::vector<int64_t> dims(x.shape().begin() + start, x.shape().begin() + end);
    return {tensor<int64_t>(dims, {static_cast<int64_t>(dims.size())})};
  });
  r.add("Slice", [](const Node& n, const Tensors& in, int64_t opset) -> Tensors {
    return {slice_onnx(n, in, opset)};
  });
  r.add("Constant",
        [](const Node& n, const Tensors&, int64_t) -> Tensors { return {constant_onnx(n)}; });
  r.add("ConstantOfShape", [](const Node& n, const Tensors& in, int64_t) -> Tensors {
    const Shape shape = int_values(required(n, in, 0));
    const Tensor v = n.get_tensor("value");
    if (!v.defined()) return {zeros(shape)};
    return {full(shape, v.item_double(), v.dtype())};
  });
  r.add("Range", [](const Node& n, const Tensors& in, int64_t) -> Tensors {
    const Tensor& start = required(n, in, 0);
    return {arange(start.item_double(), required(n, in, 1).item_double(),
                   required(n, in, 2).item_double(), start.dtype())};
  });
  r.add("Size", [](const Node& n, const Tensors& in, int64_t) -> Tensors {
    return {scalar_tensor(static_cast<double>(required(n, in, 0).numel()), DType::i64)};
  });
}

}  // namespace oar::onnx
