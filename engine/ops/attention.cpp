#include "engine/ops/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/autograd/grad_mode.h"
#include "engine/autograd/node.h"
#include "engine/core/error.h"
#include "engine/ops/attention_cpu.h"
#include "engine/ops/dispatch.h"
#include "engine/ops/reduce.h"

namespace oar {

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

namespace {

// Usable in place by the CPU kernel: columns adjacent, rows at least a row apart.
Tensor rows_adjacent(const Tensor& t) {
  const bool ok = (t.size(-1) <= 1 || t.stride(-1) == 1) &&
                  (t.size(-2) <= 1 || t.stride(-2) >= std::max<int64_t>(t.size(-1), 1));
  return ok ? t : t.contiguous();
}

// Element offsets, from t.data(), of the prod(batch) matrices of t [batch..., R, C].
std::vector<int64_t> batch_offsets(const Tensor& t) {
  std::vector<int64_t> off{0};
  for (int64_t d = 0; d + 2 < t.dim(); ++d) {
    std::vector<int64_t> next;
    next.reserve(off.size() * static_cast<size_t>(t.size(d)));
    for (int64_t o : off)
      for (int64_t i = 0; i < t.size(d); ++i) next.push_back(o + i * t.stride(d));
    off = std::move(next);
  }
  return off;
}

cpu::MatrixBatch matrices(const Tensor& t) {
  cpu::MatrixBatch m;
  m.data = t.data<float>();
  m.offset = batch_offsets(t);
  m.ld = t.size(-2) <= 1 ? std::max<int64_t>(t.size(-1), 1) : t.stride(-2);
  return m;
}

// An f32 tensor of `shape` (`like`'s rank). When `like` is the head split of a projection ([...,
// heads, L, D] with the heads inside L, as x.reshape({N, L, heads, D}).transpose(1, 2) gives), the
// new one is laid out the same way, so transposing back and merging the heads is a view, not a
// copy.
Tensor empty_layout(const Tensor& like, const Shape& shape) {
  const int64_t r = like.dim();
  if (r >= 3 && like.size(-3) > 1 && like.size(-2) > 1 && like.stride(-1) == 1 &&
      like.stride(-3) < like.stride(-2)) {
    Shape phys = shape;
    std::swap(phys[static_cast<size_t>(r - 3)], phys[static_cast<size_t>(r - 2)]);
    return empty(phys, DType::f32, like.device()).transpose(r - 3, r - 2);
  }
  return empty(shape, DType::f32, like.device());
}

// q, k, v [N, heads, L, D] are the three parts of one dense [N, L, 3, heads, D] region (what
// split_qkv_heads gives for a contiguous qkv): the same storage, strides and layout, k and v
// heads * D elements after q and k.
bool packed_qkv_parts(const Tensor& q, const Tensor& k, const Tensor& v) {
  if (q.dim() != 4 || q.dtype() != DType::f32 || !q.same_storage(k) || !q.same_storage(v) ||
      k.shape() != q.shape() || v.shape() != q.shape() || k.strides() != q.strides() ||
      v.strides() != q.strides() || k.dtype() != q.dtype() || v.dtype() != q.dtype())
    return false;
  const int64_t H = q.size(1), L = q.size(2), D = q.size(3);
  const Shape want{L * 3 * H * D, D, 3 * H * D, 1};
  return q.strides() == want && k.offset() == q.offset() + H * D &&
         v.offset() == q.offset() + 2 * H * D;
}

// Part i (q, k or v) of buf [N, L, 3, heads, D] as a [N, heads, L, D] view.
Tensor qkv_part(const Tensor& buf, int64_t i) {
  return buf.select(2, i).transpose(1, 2);
}

}  // namespace

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
  const bool mask_grad = m.defined() && m.dtype() != DType::boolean;
  const bool grad = autograd::needs_grad({q, k, v, mask_grad ? m : Tensor()});
  auto finish = [&](Tensor out) {
    if (out_dtype == DType::f32) return out;
    // Cast keeping the head-merge-friendly layout of `out` when it has one.
    if (r >= 3 && out.stride(-3) < out.stride(-2))
      return out.transpose(r - 3, r - 2).to(out_dtype).transpose(r - 3, r - 2);
    return out.to(out_dtype);
  };

  if (q.device().is_cpu()) {
    // The kernel reads q, k, v, the mask and writes the output and gradients in place, at their
    // strides: no copies for the head split and merge, nor to broadcast the mask.
    const Tensor qd = rows_adjacent(q.detach()), kd = rows_adjacent(k.detach()),
                 vd = rows_adjacent(v.detach());
    Tensor out = empty_layout(qd, out_shape);
    if (B == 0 || Lq == 0 || Dv == 0) return finish(out);
    const Tensor probs = empty({B, Lq, Lk}, DType::f32, q.device());
    const Tensor me = m.defined() ? m.detach().expand(full) : Tensor();
    cpu::MaskBatch mb;
    if (me.defined()) {
      if (me.dtype() == DType::boolean)
        mb.keep = me.data<bool>();
      else
        mb.additive = me.data<float>();
      mb.offset = batch_offsets(me);
      mb.row_stride = me.stride(-2);
      mb.col_stride = me.stride(-1);
    }
    // The dropout keep bits, one bit per weight, for backward to read (not draw) again.
    const Tensor keep =
        p > 0.0 ? empty({B, cpu::attention_keep_bytes(Lq, Lk)}, DType::u8, q.device()) : Tensor();
    cpu::attention_forward(matrices(qd), matrices(kd), matrices(vd), mb, B, Lq, Lk, D, Dv, sc, p,
                           seed, base, matrices(out), probs.data<float>(),
                           keep.defined() ? keep.data<uint8_t>() : nullptr);
    if (grad) {
      autograd::record(
          op, {&out}, {q, k, v, mask_grad ? m : Tensor()},
          [qd, kd, vd, probs, keep, sc, p, full, Lq, Lk, D, Dv,
           m_shape = m.defined() ? m.shape() : Shape()](const autograd::Grads& g) {
            NoGradGuard no_grad;
            const int64_t B = probs.size(0);
            const Tensor dout = rows_adjacent(g[0]);
            // q, k, v split from one packed projection: their gradients go to one buffer laid
            // out the same way, which split_qkv_heads' backward passes on without a copy.
            const bool packed =
                g.needs(0) && g.needs(1) && g.needs(2) && packed_qkv_parts(qd, kd, vd);
            const Tensor buf =
                packed ? empty({qd.size(0), Lq, 3, qd.size(1), D}, DType::f32, qd.device())
                       : Tensor();
            auto grad_like = [&](int64_t i, const Tensor& t) {
              return packed ? qkv_part(buf, i) : g.needs(i) ? empty_layout(t, t.shape()) : Tensor();
            };
            const Tensor dq = grad_like(0, qd), dk = grad_like(1, kd), dv = grad_like(2, vd);
            const Tensor ds = g.needs(3) ? empty({B, Lq, Lk}, DType::f32, qd.device()) : Tensor();
            auto mats = [](const Tensor& t) {
              return t.defined() ? matrices(t) : cpu::MatrixBatch{};
            };
            cpu::attention_backward(matrices(qd), matrices(kd), matrices(vd), probs.data<float>(),
                                    keep.defined() ? keep.data<uint8_t>() : nullptr, matrices(dout),
                                    B, Lq, Lk, D, Dv, sc, p, mats(dq), mats(dk), mats(dv),
                                    ds.defined() ? ds.data<float>() : nullptr);
            return autograd::TensorList{dq, dk, dv,
                                        ds.defined() ? sum_to(ds.view(full), m_shape) : Tensor()};
          });
    }
    return finish(out);
  }

#ifdef OAR_WITH_CUDA
  Tensor out = empty(out_shape, DType::f32, q.device());
  if (B == 0 || Lq == 0 || Dv == 0) return out.to(out_dtype);
  const Tensor q3 = q.detach().contiguous().view({B, Lq, D});
  const Tensor k3 = k.detach().contiguous().view({B, Lk, D});
  const Tensor v3 = v.detach().contiguous().view({B, Lk, Dv});
  const Tensor m3 = m.defined() ? m.detach().expand(full).reshape({B, Lq, Lk}) : Tensor();
  const Tensor probs = empty({B, Lq, Lk}, DType::f32, q.device());
  cuda::attention_forward(q3, k3, v3, m3, sc, p, seed, base, out.view({B, Lq, Dv}), probs);
  if (grad) {
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
          cuda::attention_backward(q3, k3, v3, probs, dout, sc, p, seed, base, dq, dk, dv, ds);
          return autograd::TensorList{dq.defined() ? dq.view(q_shape) : Tensor(),
                                      dk.defined() ? dk.view(k_shape) : Tensor(),
                                      dv.defined() ? dv.view(v_shape) : Tensor(),
                                      ds.defined() ? sum_to(ds.view(full), m_shape) : Tensor()};
        });
  }
  return finish(out);
#else
  OAR_FAIL(op, ": no kernel for device ", q.device().str());
#endif
}

std::vector<Tensor> split_qkv_heads(const Tensor& qkv, int64_t heads) {
  const char* op = "split_qkv_heads";
  OAR_CHECK(qkv.defined(), op, ": undefined input");
  OAR_CHECK(heads > 0, op, ": heads must be positive, got ", heads);
  OAR_CHECK(qkv.dim() == 3 && qkv.size(2) % (3 * heads) == 0, op,
            ": qkv must be [N, L, 3 * heads * D] with heads = ", heads, ", got ",
            shape_str(qkv.shape()));
  const int64_t N = qkv.size(0), L = qkv.size(1), D = qkv.size(2) / (3 * heads);
  const Shape packed{N, L, 3, heads, D};
  const Tensor x =
      qkv.numel() == 0 ? empty(packed, qkv.dtype(), qkv.device()) : qkv.detach().reshape(packed);
  std::vector<Tensor> out{qkv_part(x, 0), qkv_part(x, 1), qkv_part(x, 2)};
  if (autograd::needs_grad({qkv})) {
    autograd::record(
        op, {&out[0], &out[1], &out[2]}, {qkv},
        [packed, shape = qkv.shape(), dt = qkv.dtype(),
         dev = qkv.device()](const autograd::Grads& g) {
          NoGradGuard no_grad;
          if (g.defined(0) && g.defined(1) && g.defined(2) && g[0].offset() == 0 &&
              g[0].dtype() == dt && packed_qkv_parts(g[0], g[1], g[2]) &&
              g[0].impl()->storage->nbytes >=
                  static_cast<size_t>(shape_numel(packed)) * dtype_size(dt)) {
            // The three gradients fill one [N, L, 3, heads, D] buffer: it is qkv's gradient.
            auto impl = std::make_shared<TensorImpl>();
            impl->storage = g[0].impl()->storage;
            impl->shape = shape;
            impl->strides = contiguous_strides(shape);
            impl->dtype = dt;
            return autograd::TensorList{Tensor(impl)};
          }
          Tensor buf = empty(packed, dt, dev);
          for (int64_t i = 0; i < 3; ++i) {
            Tensor part = qkv_part(buf, i);
            if (g.defined(static_cast<size_t>(i)))
              part.copy_(g[static_cast<size_t>(i)]);
            else
              part.zero_();
          }
          return autograd::TensorList{buf.numel() == 0 ? empty(shape, dt, dev) : buf.view(shape)};
        });
  }
  return out;
}

}  // namespace oar
