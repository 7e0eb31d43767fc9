#include "engine/ops/attention.h"

#include <cmath>

#include "engine/autograd/grad_mode.h"
#include "engine/autograd/node.h"
#include "engine/core/error.h"
#include "engine/ops/dispatch.h"
#include "engine/ops/reduce.h"

namespace oar {

namespace cpu {
// Fused attention over B = prod(batch dims) independent heads, f32. q [B, Lq, D], k [B, Lk, D],
// v [B, Lk, Dv] contiguous; mask [B, Lq, Lk] (any strides, f32 additive or bool keep-mask) or
// undefined. Writes out [B, Lq, Dv] and probs [B, Lq, Lk] (softmax before dropout). Dropout
// keeps weight (b, i, j) when uniform(seed, base + (b*Lq + i)*Lk + j) >= p.
void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask,
                       double scale, double p, uint64_t seed, uint64_t base, const Tensor& out,
                       const Tensor& probs);
// Writes dq, dk, dv (each may be undefined) and dscores [B, Lq, Lk] (the gradient of the masked
// scores, i.e. of an additive mask; may be undefined).
void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& probs,
                        const Tensor& dout, double scale, double p, uint64_t seed, uint64_t base,
                        const Tensor& dq, const Tensor& dk, const Tensor& dv,
                        const Tensor& dscores);
}  // namespace cpu
#ifdef OAR_WITH_CUDA
namespace cuda {
void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask,
                       double scale, double p, uint64_t seed, uint64_t base, const Tensor& out,
                       const Tensor& probs);
void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& probs,
                        const Tensor& dout, double scale, double p, uint64_t seed, uint64_t base,
                        const Tensor& dq, const Tensor& dk, const Tensor& dv,
                        const Tensor& dscores);
}  // namespace cuda
#endif

Tensor scaled_dot_product_attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in,
                                    const Tensor& mask, double scale, double dropout_p,
                                    bool training, Generator* gen) {
  const char* op = "scaled_dot_product_attention";
  OAR_CHECK(q_in.defined() && k_in.defined() && v_in.defined(), op, ": undefined input");
  OAR_CHECK(q_in.dim() >= 2 && q_in.dim() == k_in.dim() && q_in.dim() == v_in.dim(), op,
            ": q, k, v must have the same rank >= 2 ([..., L, D]), got q ", shape_str(q_in.shape()),
            ", k ", shape_str(k_in.shape()), ", v ", shape_str(v_in.shape()));
  OAR_CHECK_SAME_DEVICE(op, q_in, k_in);
  OAR_CHECK_SAME_DEVICE(op, q_in, v_in);
  const int64_t r = q_in.dim();
  const Shape batch(q_in.shape().begin(), q_in.shape().end() - 2);
  const int64_t Lq = q_in.size(-2), D = q_in.size(-1), Lk = k_in.size(-2), Dv = v_in.size(-1);
  OAR_CHECK(Shape(k_in.shape().begin(), k_in.shape().end() - 2) == batch &&
                Shape(v_in.shape().begin(), v_in.shape().end() - 2) == batch,
            op, ": batch dimensions of q ", shape_str(q_in.shape()), ", k ",
            shape_str(k_in.shape()), " and v ", shape_str(v_in.shape()), " must be equal");
  OAR_CHECK(k_in.size(-1) == D, op, ": k's last dimension ", k_in.size(-1), " must equal q's (", D,
            ")");
  OAR_CHECK(v_in.size(-2) == Lk, op, ": v has ", v_in.size(-2), " keys, k has ", Lk);
  OAR_CHECK(dropout_p >= 0.0 && dropout_p < 1.0, op, ": dropout_p must be in [0, 1), got ",
            dropout_p);
  Shape full = batch;
  full.push_back(Lq);
  full.push_back(Lk);
  if (mask.defined()) {
    OAR_CHECK_SAME_DEVICE(op, q_in, mask);
    OAR_CHECK(mask.dim() <= r && broadcast_shapes(mask.shape(), full, op) == full, op, ": mask ",
              shape_str(mask.shape()), " does not broadcast to ", shape_str(full));
    OAR_CHECK(is_floating(mask.dtype()) || mask.dtype() == DType::boolean, op,
              ": mask must be floating (additive) or bool (true = attend), got ",
              dtype_name(mask.dtype()));
  }
  for (const Tensor* t : {&q_in, &k_in, &v_in})
    OAR_CHECK(is_floating(t->dtype()), op, ": dtype ", dtype_name(t->dtype()),
              " not supported (floating types only)");
  // The kernel computes in f32; other floating types pass through autograd-aware casts.
  const DType out_dtype = q_in.dtype();
  auto f32 = [](const Tensor& t) { return t.dtype() == DType::f32 ? t : t.to(DType::f32); };
  const Tensor q = f32(q_in), k = f32(k_in), v = f32(v_in);
  const Tensor m = mask.defined() && mask.dtype() != DType::boolean ? f32(mask) : mask;

  const int64_t B = shape_numel(batch);
  const double sc = scale > 0.0 ? scale : 1.0 / std::sqrt(static_cast<double>(D));
  const double p = training ? dropout_p : 0.0;
  uint64_t seed = 0, base = 0;
  if (p > 0.0) {
    Generator& g = gen ? *gen : default_generator();
    seed = g.seed();
    base = g.reserve(static_cast<uint64_t>(B * Lq * Lk));
  }
  Shape out_shape = batch;
  out_shape.push_back(Lq);
  out_shape.push_back(Dv);
  Tensor out = empty(out_shape, DType::f32, q.device());
  if (B == 0 || Lq == 0 || Dv == 0) return out.to(out_dtype);

  const Tensor q3 = q.detach().contiguous().view({B, Lq, D});
  const Tensor k3 = k.detach().contiguous().view({B, Lk, D});
  const Tensor v3 = v.detach().contiguous().view({B, Lk, Dv});
  const Tensor m3 = m.defined() ? m.detach().expand(full).reshape({B, Lq, Lk}) : Tensor();
  const Tensor probs = empty({B, Lq, Lk}, DType::f32, q.device());
  OAR_DISPATCH_GPU(q.device(), attention_forward, q3, k3, v3, m3, sc, p, seed, base,
                   out.view({B, Lq, Dv}), probs);

  const bool mask_grad = m.defined() && m.dtype() != DType::boolean;
  if (autograd::needs_grad({q, k, v, mask_grad ? m : Tensor()})) {
    autograd::record(
        op, {&out}, {q, k, v, mask_grad ? m : Tensor()},
        [q3, k3, v3, probs, sc, p, seed, base, full, q_shape = q.shape(), k_shape = k.shape(),
         v_shape = v.shape(),
         m_shape = m.defined() ? m.shape() : Shape()](const autograd::Grads& g) {
          NoGradGuard no_grad;
          const int64_t B = q3.size(0), Lq = q3.size(1), Lk = k3.size(1);
          const Tensor dout = g[0].contiguous().view({B, Lq, v3.size(2)});
          const Tensor dq = g.needs(0) ? empty(q3.shape(), DType::f32, q3.device()) : Tensor();
          const Tensor dk = g.needs(1) ? empty(k3.shape(), DType::f32, q3.device()) : Tensor();
          const Tensor dv = g.needs(2) ? empty(v3.shape(), DType::f32, q3.device()) : Tensor();
          const Tensor ds = g.needs(3) ? empty({B, Lq, Lk}, DType::f32, q3.device()) : Tensor();
          OAR_DISPATCH_GPU(q3.device(), attention_backward, q3, k3, v3, probs, dout, sc, p, seed,
                           base, dq, dk, dv, ds);
          return autograd::TensorList{dq.defined() ? dq.view(q_shape) : Tensor(),
                                      dk.defined() ? dk.view(k_shape) : Tensor(),
                                      dv.defined() ? dv.view(v_shape) : Tensor(),
                                      ds.defined() ? sum_to(ds.view(full), m_shape) : Tensor()};
        });
  }
  return out_dtype == DType::f32 ? out : out.to(out_dtype);
}

}  // namespace oar
