#include "engine/ops/matmul.h"
#include "engine/autograd/autocast.h"

#include "engine/autograd/node.h"
#include "engine/core/error.h"
#include "engine/ops/binary.h"
#include "engine/ops/cpu/packed_linear.h"
#include "engine/ops/dispatch.h"
#include "engine/ops/reduce.h"
#include "engine/ops/unary.h"

namespace oar {

namespace cpu {
// out [..., M, N] = a [..., M, K] x b [..., K, N] (+ bias broadcastable to out); all of out's
// rank, batch dims 1 or out's; out contiguous. Strided operands are read in place.
void matmul(const Tensor& out, const Tensor& a, const Tensor& b, const Tensor& bias, int act = 0);
// engine/ops/cpu/unary.cpp: y = act(h) with h overwritten by act'(h) (n contiguous f32), and
// gh = g * d with gb = column sums of gh ([rows, n]; gb may be null).
void act_forward_keep_grad(float* y, float* h, int64_t n, int act);
void act_backward_bias(float* gh, float* gb, const float* g, const float* d, int64_t rows,
                       int64_t n);
}  // namespace cpu
#ifdef OAR_WITH_CUDA
namespace cuda {
void matmul(const Tensor& out, const Tensor& a, const Tensor& b, const Tensor& bias);
}  // namespace cuda
#endif

namespace {

void check_pair(const char* op, const Tensor& a, const Tensor& b) {
  OAR_CHECK(a.defined() && b.defined(), op, ": undefined input");
  OAR_CHECK_SAME_DEVICE(op, a, b);
  OAR_CHECK(a.dtype() == b.dtype(), op, ": operands have different dtypes (", dtype_name(a.dtype()),
            " and ", dtype_name(b.dtype()), ")");
  OAR_CHECK(a.dtype() == DType::f32 || a.dtype() == DType::bf16 || a.dtype() == DType::f16, op,
            ": dtype ", dtype_name(a.dtype()), " not supported (f32, bf16 or f16)");
}

void check_bias(const char* op, const Tensor& x, const Tensor& bias) {
  if (!bias.defined()) return;
  OAR_CHECK_SAME_DEVICE(op, x, bias);
  OAR_CHECK(bias.dtype() == x.dtype() || bias.dtype() == DType::f32, op, ": bias dtype ",
            dtype_name(bias.dtype()), " does not match input dtype ", dtype_name(x.dtype()));
}

Tensor with_leading_ones(const Tensor& t, size_t rank) {
  if (t.shape().size() == rank) return t;
  Shape s(rank - t.shape().size(), 1);
  s.insert(s.end(), t.shape().begin(), t.shape().end());
  return t.numel() == 0 ? empty(s, t.dtype(), t.device()) : t.view(s);
}

// The product into a new contiguous tensor of `shape` (a, b, bias already of its rank).
Tensor product(const Tensor& a, const Tensor& b, const Tensor& bias, const Shape& shape) {
  Tensor out = empty(shape, a.dtype(), a.device());
  if (out.numel() == 0) return out;
  if (a.size(-1) == 0) {  // empty inner dim: the sum of nothing (plus bias)
    if (bias.defined())
      out.copy_(bias);
    else
      out.zero_();
    return out;
  }
  OAR_DISPATCH_GPU(a.device(), matmul, out, a, b, bias);
  return out;
}

Tensor mT(const Tensor& t) {
  return t.transpose(-1, -2);
}

// t.reshape(shape), also for empty tensors (which Tensor::view does not yet take).
Tensor reshaped(const Tensor& t, const Shape& shape) {
  if (t.numel() == 0) return empty(shape, t.dtype(), t.device());
  return t.reshape(shape);
}

}  // namespace

Tensor matmul(const Tensor& a_arg, const Tensor& b_arg) {
  Tensor a_in = a_arg, b_in = b_arg;
  autocast_inputs("matmul", {&a_in, &b_in});
  check_pair("matmul", a_in, b_in);
  OAR_CHECK(a_in.dim() >= 1 && b_in.dim() >= 1, "matmul: operands must have at least 1 dim, got ",
            shape_str(a_in.shape()), " and ", shape_str(b_in.shape()));
  const bool vec_a = a_in.dim() == 1, vec_b = b_in.dim() == 1;
  Tensor a = vec_a ? a_in.detach().unsqueeze(0) : a_in.detach();
  Tensor b = vec_b ? b_in.detach().unsqueeze(1) : b_in.detach();
  OAR_CHECK(a.size(-1) == b.size(-2), "matmul: inner dims differ: ", shape_str(a_in.shape()), " x ",
            shape_str(b_in.shape()), " (a's last dim must equal b's ",
            vec_b ? "only" : "second-to-last", " dim)");
  const Shape batch_a(a.shape().begin(), a.shape().end() - 2);
  const Shape batch_b(b.shape().begin(), b.shape().end() - 2);
  Shape shape = broadcast_shapes(batch_a, batch_b, "matmul");
  const size_t rank = shape.size() + 2;
  a = with_leading_ones(a, rank);
  b = with_leading_ones(b, rank);
  shape.push_back(a.size(-2));
  shape.push_back(b.size(-1));
  Tensor out = product(a, b, Tensor(), shape);
  if (vec_a || vec_b) {
    Shape s(shape.begin(), shape.end() - 2);
    if (!vec_a) s.push_back(shape[rank - 2]);
    if (!vec_b) s.push_back(shape[rank - 1]);
    out = reshaped(out, s);
  }
  if (autograd::needs_grad({a_in, b_in})) {
    autograd::record("matmul", {&out}, {a_in, b_in},
                     [a, b, shape, sa = a_in.shape(), sb = b_in.shape()](const autograd::Grads& g) {
                       const Tensor gp = g[0].reshape(shape);
                       Tensor ga, gb;
                       if (g.needs(0)) ga = sum_to(matmul(gp, mT(b)), a.shape()).reshape(sa);
                       if (g.needs(1)) {
                         bool b_unbatched = true;
                         for (int64_t d = 0; d + 2 < b.dim(); ++d)
                           b_unbatched = b_unbatched && b.size(d) == 1;
                         if (b_unbatched && a.dim() > 2) {
                           // The sum over the batch of a_i^T g_i is one product over all rows.
                           Shape ea = shape;
                           ea.back() = a.size(-1);
                           const Tensor rows = a.expand(ea).reshape({-1, a.size(-1)});
                           gb = matmul(mT(rows), gp.reshape({-1, b.size(-1)})).reshape(sb);
                         } else {
                           gb = sum_to(matmul(mT(a), gp), b.shape()).reshape(sb);
                         }
                       }
                       return autograd::TensorList{ga, gb};
                     });
  }
  return out;
}

Tensor bmm(const Tensor& a_arg, const Tensor& b_arg) {
  Tensor a_in = a_arg, b_in = b_arg;
  autocast_inputs("bmm", {&a_in, &b_in});
  check_pair("bmm", a_in, b_in);
  OAR_CHECK(a_in.dim() == 3 && b_in.dim() == 3 && a_in.size(0) == b_in.size(0) &&
                a_in.size(2) == b_in.size(1),
            "bmm: expected [B, M, K] x [B, K, N], got ", shape_str(a_in.shape()), " x ",
            shape_str(b_in.shape()));
  const Tensor a = a_in.detach(), b = b_in.detach();
  Tensor out = product(a, b, Tensor(), {a.size(0), a.size(1), b.size(2)});
  if (autograd::needs_grad({a_in, b_in})) {
    autograd::record("bmm", {&out}, {a_in, b_in}, [a, b](const autograd::Grads& g) {
      return autograd::TensorList{g.needs(0) ? bmm(g[0], mT(b)) : Tensor(),
                                  g.needs(1) ? bmm(mT(a), g[0]) : Tensor()};
    });
  }
  return out;
}

namespace {

// linear's and linear_act's shape checks: x [..., in], weight [out, in], bias [out].
struct LinearShape {
  int64_t rows, in, n;
  Shape out;  // x's leading dims, then n
};
LinearShape check_linear(const Tensor& x_in, const Tensor& w_in, const Tensor& b_in) {
  check_pair("linear", x_in, w_in);
  check_bias("linear", x_in, b_in);
  OAR_CHECK(x_in.dim() >= 1 && w_in.dim() == 2 && x_in.size(-1) == w_in.size(1),
            "linear: expected x [..., in] and weight [out, in], got ", shape_str(x_in.shape()),
            " and ", shape_str(w_in.shape()));
  const int64_t in = w_in.size(1), n = w_in.size(0);
  OAR_CHECK(!b_in.defined() || (b_in.dim() == 1 && b_in.size(0) == n), "linear: bias must be [", n,
            "], got ", shape_str(b_in.shape()));
  int64_t rows = 1;
  for (int64_t d = 0; d + 1 < x_in.dim(); ++d) rows *= x_in.size(d);
  Shape shape(x_in.shape().begin(), x_in.shape().end() - 1);
  shape.push_back(n);
  return {rows, in, n, std::move(shape)};
}

}  // namespace

Tensor linear(const Tensor& x_arg, const Tensor& w_arg, const Tensor& b_arg) {
  Tensor x_in = x_arg, w_in = w_arg, b_in = b_arg;
  autocast_inputs("linear", {&x_in, &w_in, &b_in});
  const auto [rows, in, n, shape] = check_linear(x_in, w_in, b_in);
  const Tensor x = reshaped(x_in.detach(), {rows, in});
  const Tensor w = w_in.detach();
  const Tensor bias = b_in.defined() ? b_in.detach().contiguous().reshape({1, n}) : Tensor();
  const bool grad = autograd::needs_grad({x_in, w_in, b_in});
  if (!grad && x.device().is_cpu()) {  // inference: from packed weights where that applies
    const Tensor out = cpu::packed_linear(x, w, bias, 0);
    if (out.defined()) return out.view(shape);
  }
  Tensor out = reshaped(product(x, w.t(), bias, {rows, n}), shape);
  if (grad) {
    autograd::record("linear", {&out}, {x_in, w_in, b_in},
                     [x, w, rows, n, sx = x_in.shape()](const autograd::Grads& g) {
                       const Tensor g2 = g[0].reshape({rows, n});
                       return autograd::TensorList{
                           g.needs(0) ? matmul(g2, w).reshape(sx) : Tensor(),
                           g.needs(1) ? matmul(g2.t(), x) : Tensor(),
                           g.needs(2) ? sum(g2, {0}) : Tensor()};
                     });
  }
  return out;
}

void release_packed_linear_weights() {
  cpu::packed_linear_release();
}

Tensor linear_stacked(const Tensor& x_in, const std::vector<Tensor>& weights, const Tensor& b_in,
                      const std::function<Tensor()>& stacked) {
  std::vector<Tensor> operands{x_in, b_in};
  operands.insert(operands.end(), weights.begin(), weights.end());
  bool parts_defined = !weights.empty();
  for (const Tensor& w : weights) parts_defined = parts_defined && w.defined();
  if (x_in.defined() && x_in.device().is_cpu() && parts_defined && !autocast_enabled() &&
      !autograd::needs_grad(operands)) {
    int64_t n = 0;
    for (const Tensor& w : weights) n += w.dim() == 2 ? w.size(0) : 0;
    if (x_in.dim() >= 1 && (!b_in.defined() || (b_in.dim() == 1 && b_in.size(0) == n))) {
      int64_t rows = 1;
      for (int64_t d = 0; d + 1 < x_in.dim(); ++d) rows *= x_in.size(d);
      Shape shape(x_in.shape().begin(), x_in.shape().end() - 1);
      shape.push_back(n);
      const Tensor bias = b_in.defined() ? b_in.contiguous() : Tensor();
      const Tensor out =
          cpu::packed_linear(reshaped(x_in, {rows, x_in.size(-1)}), weights, bias, 0);
      if (out.defined()) return out.view(shape);
    }
  }
  return linear(x_in, stacked(), b_in);
}

Tensor linear_act(const Tensor& x_arg, const Tensor& w_arg, const Tensor& b_arg,
                  LinearActivation act) {
  auto apply = [act](const Tensor& t) {
    switch (act) {
      case LinearActivation::none:
        return t;
      case LinearActivation::relu:
        return relu(t);
      case LinearActivation::gelu:
        return gelu(t, false);
      case LinearActivation::gelu_tanh:
        return gelu(t, true);
    }
    return t;
  };
  Tensor x_in = x_arg, w_in = w_arg, b_in = b_arg;
  autocast_inputs("linear", {&x_in, &w_in, &b_in});
  // Only the CPU kernels fuse: else unfused.
  if (act == LinearActivation::none || !x_in.defined() || !x_in.device().is_cpu())
    return apply(linear(x_in, w_in, b_in));
  const auto [rows, in, n, shape] = check_linear(x_in, w_in, b_in);
  if (rows == 0 || n == 0 || in == 0) return apply(linear(x_in, w_in, b_in));
  if (autograd::needs_grad({x_in, w_in, b_in})) {
    // Training (f32): the GEMM (with its bias) writes the pre-activation h, one pass turns it
    // into act(h) and, in place, act'(h); backward multiplies the gradient by act'(h) and sums
    // the bias gradient in the same pass, then runs linear's two GEMMs.
    if (x_in.dtype() != DType::f32 || w_in.dtype() != DType::f32 ||
        (b_in.defined() && b_in.dtype() != DType::f32))
      return apply(linear(x_in, w_in, b_in));
    const Tensor x = reshaped(x_in.detach(), {rows, in});
    const Tensor w = w_in.detach();
    const Tensor bias = b_in.defined() ? b_in.detach().contiguous().reshape({1, n}) : Tensor();
    Tensor d = empty({rows, n}, DType::f32, x.device());
    cpu::matmul(d, x, w.t(), bias, 0);
    Tensor out = empty({rows, n}, DType::f32, x.device());
    cpu::act_forward_keep_grad(out.data<float>(), d.data<float>(), rows * n, static_cast<int>(act));
    out = out.view(shape);
    autograd::record(
        "linear_act", {&out}, {x_in, w_in, b_in},
        [x, w, d, rows, n, sx = x_in.shape()](const autograd::Grads& g) {
          const Tensor g2 = (g[0].dtype() == DType::f32 ? g[0] : g[0].to(DType::f32))
                                .contiguous()
                                .reshape({rows, n});
          // gh overwrites the incoming gradient when nothing else holds its memory (the
          // kernel reads each element before writing it).
          const bool reuse =
              g2.impl() == g[0].impl()
                  ? sole_owner(g2, 2)
                  : g[0].impl_ptr().use_count() == 1 && g2.impl_ptr().use_count() == 1 &&
                        g2.impl()->storage.use_count() == (g2.same_storage(g[0]) ? 2 : 1);
          const Tensor gh = reuse ? g2 : empty({rows, n}, DType::f32, d.device());
          const Tensor gb = g.needs(2) ? empty({n}, DType::f32, d.device()) : Tensor();
          cpu::act_backward_bias(gh.data<float>(), gb.defined() ? gb.data<float>() : nullptr,
                                 g2.data<float>(), d.data<float>(), rows, n);
          return autograd::TensorList{g.needs(0) ? matmul(gh, w).reshape(sx) : Tensor(),
                                      g.needs(1) ? matmul(gh.t(), x) : Tensor(), gb};
        });
    return out;
  }
  const Tensor bias = b_in.defined() ? b_in.contiguous().reshape({1, n}) : Tensor();
  const Tensor x = reshaped(x_in, {rows, in});
  Tensor out = cpu::packed_linear(x, w_in, bias, static_cast<int>(act));
  if (!out.defined()) {
    out = empty({rows, n}, x_in.dtype(), x_in.device());
    cpu::matmul(out, x, w_in.t(), bias, static_cast<int>(act));
  }
  return out.view(shape);
}

Tensor gemm(const Tensor& a_arg, const Tensor& b_arg, const Tensor& c_arg, double alpha,
            double beta, bool trans_a, bool trans_b) {
  Tensor a_in = a_arg, b_in = b_arg, c_in = c_arg;
  autocast_inputs("gemm", {&a_in, &b_in, &c_in});
  check_pair("gemm", a_in, b_in);
  check_bias("gemm", a_in, c_in);
  OAR_CHECK(a_in.dim() == 2 && b_in.dim() == 2, "gemm: operands must be 2-D, got ",
            shape_str(a_in.shape()), " and ", shape_str(b_in.shape()));
  const Tensor a = trans_a ? a_in.t() : a_in;
  const Tensor b = trans_b ? b_in.t() : b_in;
  OAR_CHECK(a.size(1) == b.size(0), "gemm: inner dims differ: op(a) ", shape_str(a.shape()),
            " x op(b) ", shape_str(b.shape()));
  const Shape shape{a.size(0), b.size(1)};
  if (c_in.defined()) {
    OAR_CHECK(c_in.dim() <= 2 && broadcast_shapes(c_in.shape(), shape, "gemm") == shape, "gemm: c ",
              shape_str(c_in.shape()), " does not broadcast to ", shape_str(shape));
  }
  if (alpha != 1.0 || (c_in.defined() && beta != 1.0)) {
    Tensor out = matmul(a, b);
    if (alpha != 1.0) out = mul(out, alpha);
    if (c_in.defined() && beta != 0.0) out = add(out, beta == 1.0 ? c_in : mul(c_in, beta));
    return out;
  }
  // alpha = beta = 1: c is the matmul's bias (one pass over the output).
  const Tensor ad = a.detach(), bd = b.detach();
  Tensor bias;
  if (c_in.defined()) {
    Shape cs(2 - c_in.dim(), 1);
    cs.insert(cs.end(), c_in.shape().begin(), c_in.shape().end());
    bias = c_in.detach().contiguous().view(cs);
  }
  Tensor out = product(ad, bd, bias, shape);
  if (autograd::needs_grad({a, b, c_in})) {
    autograd::record(
        "gemm", {&out}, {a, b, c_in},
        [ad, bd, sc = c_in.defined() ? c_in.shape() : Shape{}](const autograd::Grads& g) {
          return autograd::TensorList{g.needs(0) ? matmul(g[0], bd.t()) : Tensor(),
                                      g.needs(1) ? matmul(ad.t(), g[0]) : Tensor(),
                                      g.needs(2) ? sum_to(g[0], sc) : Tensor()};
        });
  }
  return out;
}

}  // namespace oar
