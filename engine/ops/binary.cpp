#include "engine/ops/binary.h"

#include <cmath>

#include "engine/autograd/grad_mode.h"
#include "engine/autograd/node.h"
#include "engine/core/error.h"
#include "engine/ops/dispatch.h"
#include "engine/ops/reduce.h"
#include "engine/ops/unary.h"

namespace oar {

enum class BinaryOp { add, sub, mul, div, pow, maximum, minimum, eq, ne, lt, le, gt, ge, land, lor, lxor };

namespace cpu {
void binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b);
void add_scaled_(const Tensor& a, const Tensor& b, double alpha);
void scale_(const Tensor& a, double s);
}  // namespace cpu
#ifdef OAR_WITH_CUDA
namespace cuda {
void binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b);
void add_scaled_(const Tensor& a, const Tensor& b, double alpha);
void scale_(const Tensor& a, double s);
}  // namespace cuda
#endif

namespace {

int dtype_rank(DType t) {
  switch (t) {
    case DType::boolean: return 0;
    case DType::u8: return 1;
    case DType::i32: return 2;
    case DType::i64: return 3;
    case DType::f16: return 4;
    case DType::bf16: return 4;
    case DType::f32: return 6;
  }
  return 0;
}

const char* op_name(BinaryOp op) {
  static const char* names[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq",
                                "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or",
                                "logical_xor"};
  return names[static_cast<int>(op)];
}

bool is_comparison(BinaryOp op) { return op >= BinaryOp::eq; }

Tensor compute(BinaryOp op, const Tensor& a_in, const Tensor& b_in) {
  const char* name = op_name(op);
  OAR_CHECK(a_in.defined() && b_in.defined(), name, ": undefined input");
  OAR_CHECK_SAME_DEVICE(name, a_in, b_in);
  const Shape shape = broadcast_shapes(a_in.shape(), b_in.shape(), name);
  DType ct = promote_types(a_in.dtype(), b_in.dtype());
  if (op == BinaryOp::land || op == BinaryOp::lor || op == BinaryOp::lxor) ct = DType::boolean;
  if ((op == BinaryOp::pow) && !is_floating(ct)) ct = DType::f32;
  const Tensor a = a_in.dtype() == ct ? a_in : a_in.detach().to(ct);
  const Tensor b = b_in.dtype() == ct ? b_in : b_in.detach().to(ct);
  Tensor out = empty(shape, is_comparison(op) ? DType::boolean : ct, a.device());
  OAR_DISPATCH_GPU(a.device(), binary, op, out, a, b);
  return out;
}

Tensor scalar_like(const Tensor& t, double v) {
  DType dt = t.dtype();
  if (!is_floating(dt) && v != std::floor(v)) dt = DType::f32;
  if (dt == DType::boolean && v != 0.0 && v != 1.0) dt = DType::i64;
  return scalar_tensor(v, dt, t.device());
}

}  // namespace

DType promote_types(DType a, DType b) {
  if (a == b) return a;
  if ((a == DType::bf16 && b == DType::f16) || (a == DType::f16 && b == DType::bf16))
    return DType::f32;
  return dtype_rank(a) >= dtype_rank(b) ? a : b;
}

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = compute(BinaryOp::add, a, b);
  if (autograd::needs_grad({a, b})) {
    autograd::record("add", {&out}, {a, b}, [sa = a.shape(), sb = b.shape()](const autograd::Grads& g) {
      return autograd::TensorList{g.needs(0) ? sum_to(g[0], sa) : Tensor(),
                                  g.needs(1) ? sum_to(g[0], sb) : Tensor()};
    });
  }
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = compute(BinaryOp::sub, a, b);
  if (autograd::needs_grad({a, b})) {
    autograd::record("sub", {&out}, {a, b}, [sa = a.shape(), sb = b.shape()](const autograd::Grads& g) {
      return autograd::TensorList{g.needs(0) ? sum_to(g[0], sa) : Tensor(),
                                  g.needs(1) ? sum_to(neg(g[0]), sb) : Tensor()};
    });
  }
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = compute(BinaryOp::mul, a, b);
  if (autograd::needs_grad({a, b})) {
    autograd::record("mul", {&out}, {a, b}, [a = a.detach(), b = b.detach()](const autograd::Grads& g) {
      return autograd::TensorList{g.needs(0) ? sum_to(mul(g[0], b), a.shape()) : Tensor(),
                                  g.needs(1) ? sum_to(mul(g[0], a), b.shape()) : Tensor()};
    });
  }
  return out;
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = compute(BinaryOp::div, a, b);
  if (autograd::needs_grad({a, b})) {
    autograd::record("div", {&out}, {a, b}, [a = a.detach(), b = b.detach()](const autograd::Grads& g) {
      Tensor ga, gb;
      if (g.needs(0)) ga = sum_to(div(g[0], b), a.shape());
      if (g.needs(1)) gb = sum_to(neg(div(mul(g[0], a), mul(b, b))), b.shape());
      return autograd::TensorList{ga, gb};
    });
  }
  return out;
}

Tensor pow(const Tensor& a, const Tensor& b) {
  Tensor out = compute(BinaryOp::pow, a, b);
  if (autograd::needs_grad({a, b})) {
    autograd::record("pow", {&out}, {a, b},
                     [a = a.detach(), b = b.detach(), o = out.detach()](const autograd::Grads& g) {
                       Tensor ga, gb;
                       if (g.needs(0)) ga = sum_to(mul(g[0], mul(b, pow(a, sub(b, 1.0)))), a.shape());
                       if (g.needs(1)) gb = sum_to(mul(g[0], mul(o, log(a))), b.shape());
                       return autograd::TensorList{ga, gb};
                     });
  }
  return out;
}

Tensor pow(const Tensor& a, double e) {
  Tensor out = compute(BinaryOp::pow, a, scalar_tensor(e, is_floating(a.dtype()) ? a.dtype() : DType::f32, a.device()));
  if (autograd::needs_grad({a})) {
    autograd::record("pow", {&out}, {a}, [a = a.detach(), e](const autograd::Grads& g) {
      return autograd::TensorList{mul(g[0], mul(pow(a, e - 1.0), e))};
    });
  }
  return out;
}

Tensor maximum(const Tensor& a, const Tensor& b) {
  Tensor out = compute(BinaryOp::maximum, a, b);
  if (autograd::needs_grad({a, b})) {
    autograd::record("maximum", {&out}, {a, b}, [a = a.detach(), b = b.detach()](const autograd::Grads& g) {
      Tensor mask = ge(a, b);
      Tensor ga, gb;
      if (g.needs(0)) ga = sum_to(mul(g[0], mask.to(g[0].dtype())), a.shape());
      if (g.needs(1)) gb = sum_to(mul(g[0], logical_not(mask).to(g[0].dtype())), b.shape());
      return autograd::TensorList{ga, gb};
    });
  }
  return out;
}

Tensor minimum(const Tensor& a, const Tensor& b) {
  Tensor out = compute(BinaryOp::minimum, a, b);
  if (autograd::needs_grad({a, b})) {
    autograd::record("minimum", {&out}, {a, b}, [a = a.detach(), b = b.detach()](const autograd::Grads& g) {
      Tensor mask = le(a, b);
      Tensor ga, gb;
      if (g.needs(0)) ga = sum_to(mul(g[0], mask.to(g[0].dtype())), a.shape());
      if (g.needs(1)) gb = sum_to(mul(g[0], logical_not(mask).to(g[0].dtype())), b.shape());
      return autograd::TensorList{ga, gb};
    });
  }
  return out;
}

Tensor add(const Tensor& a, double b) { return add(a, scalar_like(a, b)); }
Tensor sub(const Tensor& a, double b) { return sub(a, scalar_like(a, b)); }
Tensor rsub(double a, const Tensor& b) { return sub(scalar_like(b, a), b); }
Tensor mul(const Tensor& a, double b) { return mul(a, scalar_like(a, b)); }
Tensor div(const Tensor& a, double b) {
  return div(a, scalar_tensor(b, is_floating(a.dtype()) ? a.dtype() : DType::f32, a.device()));
}
Tensor rdiv(double a, const Tensor& b) {
  return div(scalar_tensor(a, is_floating(b.dtype()) ? b.dtype() : DType::f32, b.device()), b);
}
Tensor neg(const Tensor& a) { return mul(a, -1.0); }
Tensor Tensor::operator-() const { return neg(*this); }

Tensor eq(const Tensor& a, const Tensor& b) { return compute(BinaryOp::eq, a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return compute(BinaryOp::ne, a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return compute(BinaryOp::lt, a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return compute(BinaryOp::le, a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return compute(BinaryOp::gt, a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return compute(BinaryOp::ge, a, b); }
Tensor eq(const Tensor& a, double b) { return compute(BinaryOp::eq, a, scalar_like(a, b)); }
Tensor ne(const Tensor& a, double b) { return compute(BinaryOp::ne, a, scalar_like(a, b)); }
Tensor lt(const Tensor& a, double b) { return compute(BinaryOp::lt, a, scalar_like(a, b)); }
Tensor le(const Tensor& a, double b) { return compute(BinaryOp::le, a, scalar_like(a, b)); }
Tensor gt(const Tensor& a, double b) { return compute(BinaryOp::gt, a, scalar_like(a, b)); }
Tensor ge(const Tensor& a, double b) { return compute(BinaryOp::ge, a, scalar_like(a, b)); }
Tensor logical_and(const Tensor& a, const Tensor& b) { return compute(BinaryOp::land, a, b); }
Tensor logical_or(const Tensor& a, const Tensor& b) { return compute(BinaryOp::lor, a, b); }
Tensor logical_xor(const Tensor& a, const Tensor& b) { return compute(BinaryOp::lxor, a, b); }
Tensor logical_not(const Tensor& a) { return eq(a.to(DType::boolean), scalar_tensor(0, DType::boolean, a.device())); }

void add_(Tensor& a, const Tensor& b, double alpha) {
  OAR_CHECK_SAME_DEVICE("add_", a, b);
  broadcast_shapes(b.shape(), a.shape(), "add_");
  OAR_CHECK(broadcast_shapes(b.shape(), a.shape(), "add_") == a.shape(), "add_: ",
            shape_str(b.shape()), " does not broadcast to ", shape_str(a.shape()));
  OAR_DISPATCH_GPU(a.device(), add_scaled_, a, b.dtype() == a.dtype() ? b : b.to(a.dtype()), alpha);
  ++a.impl()->storage->version;
}

void mul_(Tensor& a, double s) {
  OAR_DISPATCH_GPU(a.device(), scale_, a, s);
  ++a.impl()->storage->version;
}

}  // namespace oar
