// ONNX BatchNormalization (inference), LayerNormalization, GroupNormalization and
// InstanceNormalization on engine/ops/norm.h.
#include "engine/ops/binary.h"
#include "engine/ops/norm.h"
#include "engine/ops/reduce.h"
#include "engine/ops/unary.h"
#include "tests/support/onnx_ops.h"

namespace oar::onnx {

namespace {
using Tensors = std::vector<Tensor>;

Tensors layer_norm_onnx(const Node& n, const Tensors& in) {
  const Tensor& x = required(n, in, 0);
  const int64_t axis = wrap_dim(n.get_int("axis", -1), x.dim(), "LayerNormalization");
  const double eps = n.get_float("epsilon", 1e-5f);
  const int64_t nd = x.dim() - axis;
  const Shape norm_shape(x.shape().begin() + axis, x.shape().end());
  auto full = [&](const Tensor& t) { return t.defined() ? t.expand(norm_shape).contiguous() : t; };
  Tensor y = layer_norm(x, nd, full(required(n, in, 1)), full(input_or_none(in, 2)), eps);
  // Optional outputs: the mean and 1/std over the normalised dims, kept as size 1.
  Shape dims;
  for (int64_t d = axis; d < x.dim(); ++d) dims.push_back(d);
  const Tensor xf = x.to(DType::f32);
  const Tensor m = mean(xf, dims, true);
  const Tensor inv_std = rsqrt(add(mean(square(sub(xf, m)), dims, true), eps));
  return {y, m, inv_std};
}

// GroupNormalization's scale and bias are per group in opset 18 and per channel from 21.
Tensor per_channel(const Tensor& t, int64_t groups, int64_t channels) {
  if (t.numel() == channels) return t.reshape({channels});
  OAR_CHECK(t.numel() == groups, "onnx: GroupNormalization: scale/bias of ", t.numel(),
            " elements for ", groups, " groups of ", channels, " channels");
  return t.reshape({groups, 1}).expand({groups, channels / groups}).reshape({channels});
}
}  // namespace

void register_norm_onnx_ops(OpRegistry& r) {
  r.add("BatchNormalization", [](const Node& n, const Tensors& in, int64_t opset) -> Tensors {
    if (n.get_int("training_mode", 0) != 0) skip(n, "training_mode=1");
    if (opset < 9 && n.get_int("spatial", 1) == 0) skip(n, "spatial=0");
    if (opset < 6 && n.get_int("is_test", 0) == 0) skip(n, "is_test=0 (training)");
    return {batch_norm(required(n, in, 0), required(n, in, 3), required(n, in, 4),
                       required(n, in, 1), required(n, in, 2), false,
                       1.0 - n.get_float("momentum", 0.9f), n.get_float("epsilon", 1e-5f))};
  });
  r.add("LayerNormalization", [](const Node& n, const Tensors& in, int64_t) -> Tensors {
    return layer_norm_onnx(n, in);
  });
  r.add("GroupNormalization", [](const Node& n, const Tensors& in, int64_t) -> Tensors {
    const Tensor& x = required(n, in, 0);
    const int64_t groups = n.get_int("num_groups", 1);
    const int64_t c = x.size(1);
    return {group_norm(x, groups, per_channel(required(n, in, 1), groups, c),
                       per_channel(required(n, in, 2), groups, c), n.get_float("epsilon", 1e-5f))};
  });
  r.add("InstanceNormalization", [](const Node& n, const Tensors& in, int64_t) -> Tensors {
    const Tensor& x = required(n, in, 0);
    return {group_norm(x, x.size(1), required(n, in, 1), required(n, in, 2),
                       n.get_float("epsilon", 1e-5f))};
  });
}

}  // namespace oar::onnx
