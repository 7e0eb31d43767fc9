// ONNX elementwise operators on engine/ops/binary.h and unary.h, plus Cast and Identity.
#include <cmath>
#include <limits>

#include "engine/ops/binary.h"
#include "engine/ops/unary.h"
#include "tests/support/onnx_ops.h"

namespace oar::onnx {

namespace {

using Tensors = std::vector<Tensor>;
using BinaryFn = Tensor (*)(const Tensor&, const Tensor&);
using UnaryFn = Tensor (*)(const Tensor&);

// Opset < 7 broadcast by `broadcast`/`axis` attributes (a right-aligned sub-shape at axis).
void check_legacy_broadcast(const Node& n) {
  if (n.has("axis")) skip(n, "legacy broadcast with an axis attribute is not supported");
}

void add_binary(OpRegistry& r, const char* op, BinaryFn f) {
  r.add(op, [f](const Node& n, const Tensors& in, int64_t) -> Tensors {
    check_legacy_broadcast(n);
    return {f(required(n, in, 0), required(n, in, 1))};
  });
}

void add_unary(OpRegistry& r, const char* op, UnaryFn f) {
  r.add(op, [f](const Node& n, const Tensors& in, int64_t) -> Tensors {
    return {f(required(n, in, 0))};
  });
}

// Max, Min, Sum, Mean: any number of inputs, broadcast together.
void add_variadic(OpRegistry& r, const char* op, BinaryFn f, bool mean) {
  r.add(op, [f, mean](const Node& n, const Tensors& in, int64_t) -> Tensors {
    OAR_CHECK(!in.empty(), "onnx: ", n.op_type, " needs at least one input");
    Tensor acc = required(n, in, 0);
    for (size_t i = 1; i < in.size(); ++i) acc = f(acc, required(n, in, i));
    if (mean) acc = div(acc, static_cast<double>(in.size()));
    return {acc};
  });
}

Tensor floating(const Node& n, const Tensor& x) {
  if (!is_floating(x.dtype()))
    skip(n, std::string("dtype ") + dtype_name(x.dtype()) + " is not floating");
  return x;
}

Tensor clip(const Node& n, const Tensors& in, int64_t opset) {
  const Tensor& x = required(n, in, 0);
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  if (opset < 11) {
    lo = n.get_float("min", -std::numeric_limits<float>::infinity());
    hi = n.get_float("max", std::numeric_limits<float>::infinity());
  } else {
    if (Tensor t = input_or_none(in, 1); t.defined()) lo = t.item_double();
    if (Tensor t = input_or_none(in, 2); t.defined()) hi = t.item_double();
  }
  if (is_floating(x.dtype()) && lo <= hi) return clamp(x, lo, hi);
  // Integers (and min > max, where ONNX gives max everywhere): min(max(x, lo), hi).
  Tensor out = x;
  if (std::isfinite(lo)) out = maximum(out, scalar_like(x, lo));
  if (std::isfinite(hi)) out = minimum(out, scalar_like(x, hi));
  return out;
}

Tensor hard_sigmoid_onnx(const Tensor& x, double alpha, double beta) {
  return clamp(add(mul(x, alpha), beta), 0.0, 1.0);
}

}  // namespace

void register_elementwise_onnx_ops(OpRegistry& r) {
  add_binary(r, "Add", add);
  add_binary(r, "Sub", sub);
  add_binary(r, "Mul", mul);
  add_binary(r, "Div", div);
  r.add("Pow", [](const Node& n, const Tensors& in, int64_t) -> Tensors {
    check_legacy_broadcast(n);
    const Tensor& x = required(n, in, 0);
    const Tensor& y = required(n, in, 1);
    // The result has the base's type whatever the exponent's.
    Tensor b = is_floating(x.dtype()) ? x : x.to(DType::f32);
    return {pow(b, y.to(b.dtype())).to(x.dtype())};
  });
  add_variadic(r, "Max", maximum, false);
  add_variadic(r, "Min", minimum, false);
  add_variadic(r, "Sum", add, false);
  add_variadic(r, "Mean", add, true);

  add_binary(r, "Equal", eq);
  add_binary(r, "Less", lt);
  add_binary(r, "LessOrEqual", le);
  add_binary(r, "Greater", gt);
  add_binary(r, "GreaterOrEqual", ge);
  add_binary(r, "And", logical_and);
  add_binary(r, "Or", logical_or);
  add_binary(r, "Xor", logical_xor);
  add_unary(r, "Not", logical_not);

  add_unary(r, "Neg", neg);
  add_unary(r, "Abs", abs);
  add_unary(r, "Exp", exp);
  add_unary(r, "Log", log);
  add_unary(r, "Sqrt", sqrt);
  add_unary(r, "Reciprocal", reciprocal);
  add_unary(r, "Sign", sign);
  add_unary(r, "Sin", sin);
  add_unary(r, "Cos", cos);
  add_unary(r, "Erf", erf);
  add_unary(r, "Relu", relu);
  add_unary(r, "Sigmoid", sigmoid);
  add_unary(r, "Tanh", tanh);
  add_unary(r, "HardSwish", hard_swish);

  r.add("LeakyRelu", [](const Node& n, const Tensors& in, int64_t) -> Tensors {
    return {leaky_relu(floating(n, required(n, in, 0)), n.get_float("alpha", 0.01f))};
  });
  r.add("Elu", [](const Node& n, const Tensors& in, int64_t) -> Tensors {
    return {elu(floating(n, required(n, in, 0)), n.get_float("alpha", 1.0f))};
  });
  r.add("Selu", [](const Node& n, const Tensors& in, int64_t) -> Tensors {
    const double alpha = n.get_float("alpha", 1.67326319217681884765625f);
    const double gamma = n.get_float("gamma", 1.05070102214813232421875f);
    return {mul(elu(floating(n, required(n, in, 0)), alpha), gamma)};
  });
  r.add("ThresholdedRelu", [](const Node& n, const Tensors& in, int64_t) -> Tensors {
    const Tensor& x = floating(n, required(n, in, 0));
    return {mul(x, gt(x, n.get_float("alpha", 1.0f)).to(x.dtype()))};
  });
  r.add("PRelu", [](const Node& n, const Tensors& in, int64_t) -> Tensors {
    const Tensor& x = required(n, in, 0);
    const Tensor& slope = required(n, in, 1);
    const Tensor zero = scalar_like(x, 0.0);
    return {add(maximum(x, zero), mul(minimum(x, zero), slope))};
  });
  r.add("Softplus", [](const Node& n, const Tensors& in, int64_t) -> Tensors {
    return {softplus(floating(n, required(n, in, 0)))};
  });
  r.add("Softsign", [](const Node& n, const Tensors& in, int64_t) -> Tensors {
    const Tensor& x = floating(n, required(n, in, 0));
    return {div(x, add(abs(x), 1.0))};
  });
  r.add("HardSigmoid", [](const Node& n, const Tensors& in, int64_t) -> Tensors {
    return {hard_sigmoid_onnx(floating(n, required(n, in, 0)), n.get_float("alpha", 0.2f),
                              n.get_float("beta", 0.5f))};
  });
  r.add("Gelu", [](const Node& n, const Tensors& in, int64_t) -> Tensors {
    const std::string approx = n.get_string("approximate", "none");
    if (approx != "none" && approx != "tanh") skip(n, "approximate='" + approx + "'");
    return {gelu(floating(n, required(n, in, 0)), approx == "tanh")};
  });
  r.add("Clip", [](const Node& n, const Tensors& in, int64_t opset) -> Tensors {
    return {clip(n, in, opset)};
  });

  r.add("Identity",
        [](const Node& n, const Tensors& in, int64_t) -> Tensors { return {required(n, in, 0)}; });
  r.add("Cast", [](const Node& n, const Tensors& in, int64_t) -> Tensors {
    const int to = static_cast<int>(n.get_int("to", 0));
    if (n.get_int("saturate", 1) != 1) skip(n, "saturate=0");
    return {required(n, in, 0).to(dtype_for(to, "Cast 'to'"))};
  });
  r.add("CastLike", [](const Node& n, const Tensors& in, int64_t) -> Tensors {
    return {required(n, in, 0).to(required(n, in, 1).dtype())};
  });
}

}  // namespace oar::onnx
