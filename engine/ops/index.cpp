#include "engine/ops/index.h"

#include <utility>

#include "engine/autograd/node.h"
#include "engine/core/error.h"
#include "engine/ops/dispatch.h"

namespace oar {

namespace cpu {
// out (i64, contiguous, idx's shape) = idx with [-n, 0) wrapped when allow_negative. Returns
// {position, value} of the first index outside the allowed range, or {-1, 0}.
std::pair<int64_t, int64_t> wrap_indices(const Tensor& out, const Tensor& idx, int64_t n,
                                         bool allow_negative);
// out (contiguous) = x with idx (1-D, valid) picking slices along dim.
void index_select(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& idx);
// out (contiguous) += src (contiguous) slices k added at slice idx[k] along dim.
void index_add(const Tensor& out, const Tensor& src, int64_t dim, const Tensor& idx);
// out (contiguous, idx's shape) = x[..., idx, ...] along dim.
void gather(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& idx);
// out (contiguous, x's values) += src at idx along dim.
void scatter_add(const Tensor& out, int64_t dim, const Tensor& idx, const Tensor& src);
}  // namespace cpu
#ifdef OAR_WITH_CUDA
namespace cuda {
std::pair<int64_t, int64_t> wrap_indices(const Tensor& out, const Tensor& idx, int64_t n,
                                         bool allow_negative);
void index_select(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& idx);
void index_add(const Tensor& out, const Tensor& src, int64_t dim, const Tensor& idx);
void gather(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& idx);
void scatter_add(const Tensor& out, int64_t dim, const Tensor& idx, const Tensor& src);
}  // namespace cuda
#endif

namespace {

// i64 contiguous indices in [0, n), or an error naming the op, the index and the size.
Tensor valid_indices(const Tensor& index, int64_t n, int64_t dim, bool allow_negative,
                     const char* op) {
  OAR_CHECK(index.defined(), op, ": undefined index");
  OAR_CHECK(index.dtype() == DType::i64 || index.dtype() == DType::i32, op,
            ": index must be i64 or i32, got ", dtype_name(index.dtype()));
  Tensor out = empty(index.shape(), DType::i64, index.device());
  const auto [pos, value] =
      OAR_DISPATCH_GPU(index.device(), wrap_indices, out, index, n, allow_negative);
  if (pos >= 0) {
    if (allow_negative)
      OAR_FAIL(op, ": index ", value, " (at position ", pos, ") out of range for dimension ", dim,
               " of size ", n, " (allowed: ", -n, "..", n - 1, ")");
    OAR_FAIL(op, ": index ", value, " (at position ", pos, ") out of range for dimension ", dim,
             " of size ", n, " (allowed: 0..", n - 1, ")");
  }
  return out;
}

Shape with_size(Shape s, int64_t dim, int64_t n) {
  s[dim] = n;
  return s;
}

// x's slices idx (valid, 1-D) along dim; no autograd.
Tensor select_slices(const Tensor& x, int64_t dim, const Tensor& idx) {
  Tensor out = empty(with_size(x.shape(), dim, idx.numel()), x.dtype(), x.device());
  OAR_DISPATCH_GPU(x.device(), index_select, out, x, dim, idx);
  return out;
}

// Adds src's slices at idx (valid, 1-D) along dim into out (contiguous, owned); no autograd.
void add_slices_(const Tensor& out, int64_t dim, const Tensor& idx, const Tensor& src) {
  Tensor s = src.dtype() == out.dtype() ? src.detach() : src.detach().to(out.dtype());
  OAR_DISPATCH_GPU(out.device(), index_add, out, s.contiguous(), dim, idx);
}

// x with src's slices added at idx along dim; no autograd.
Tensor add_slices(const Tensor& x, int64_t dim, const Tensor& idx, const Tensor& src) {
  Tensor out = x.detach().clone();
  add_slices_(out, dim, idx, src);
  return out;
}

// zeros(shape) with g's slices added at idx along dim; half types accumulate in f32.
Tensor scatter_slices(const Shape& shape, DType dt, int64_t dim, const Tensor& idx,
                      const Tensor& g) {
  const DType acc = (dt == DType::bf16 || dt == DType::f16) ? DType::f32 : dt;
  Tensor out = zeros(shape, acc, g.device());
  add_slices_(out, dim, idx, g);
  return acc == dt ? out : out.to(dt);
}

Tensor gather_raw(const Tensor& x, int64_t dim, const Tensor& idx) {
  Tensor out = empty(idx.shape(), x.dtype(), x.device());
  OAR_DISPATCH_GPU(x.device(), gather, out, x, dim, idx);
  return out;
}

// Adds src at idx along dim into out (contiguous, owned); no autograd.
void scatter_add_(const Tensor& out, int64_t dim, const Tensor& idx, const Tensor& src) {
  Tensor s = src.dtype() == out.dtype() ? src.detach() : src.detach().to(out.dtype());
  OAR_DISPATCH_GPU(out.device(), scatter_add, out, dim, idx, s);
}

// Checks index against x (and src) for gather / scatter_add: same rank, index no larger than
// x off dim (and than src everywhere).
void check_elementwise_index(const Tensor& x, int64_t dim, const Tensor& index, const Tensor* src,
                             const char* op) {
  OAR_CHECK(index.defined(), op, ": undefined index");
  OAR_CHECK(index.dim() == x.dim(), op, ": index of shape ", shape_str(index.shape()),
            " must have the rank of the input ", shape_str(x.shape()));
  for (int64_t d = 0; d < x.dim(); ++d) {
    OAR_CHECK(d == dim || index.size(d) <= x.size(d), op, ": index of shape ",
              shape_str(index.shape()), " is larger than the input ", shape_str(x.shape()),
              " in dimension ", d);
    if (src)
      OAR_CHECK(index.size(d) <= src->size(d), op, ": index of shape ", shape_str(index.shape()),
                " is larger than src ", shape_str(src->shape()), " in dimension ", d);
  }
}

}  // namespace

Tensor index_select(const Tensor& x, int64_t dim_in, const Tensor& index) {
  OAR_CHECK(x.defined(), "index_select: undefined input");
  OAR_CHECK(x.dim() >= 1, "index_select: input must have at least one dimension");
  OAR_CHECK(index.defined() && index.dim() <= 1, "index_select: index must be 1-D, got shape ",
            index.defined() ? shape_str(index.shape()) : "undefined");
  OAR_CHECK_SAME_DEVICE("index_select", x, index);
  const int64_t dim = wrap_dim(dim_in, x.dim(), "index_select");
  const Tensor idx = valid_indices(index.reshape({-1}), x.size(dim), dim, true, "index_select");
  Tensor out = select_slices(x, dim, idx);
  if (autograd::needs_grad({x})) {
    autograd::record("index_select", {&out}, {x},
                     [idx, dim, shape = x.shape(), dt = x.dtype()](const autograd::Grads& g) {
                       return autograd::TensorList{scatter_slices(shape, dt, dim, idx, g[0])};
                     });
  }
  return out;
}

Tensor take_along(const Tensor& x, int64_t dim_in, const Tensor& index) {
  OAR_CHECK(x.defined() && index.defined(), "take_along: undefined input");
  OAR_CHECK(x.dim() >= 1, "take_along: input must have at least one dimension");
  const int64_t dim = wrap_dim(dim_in, x.dim(), "take_along");
  Shape shape(x.shape().begin(), x.shape().begin() + dim);
  shape.insert(shape.end(), index.shape().begin(), index.shape().end());
  shape.insert(shape.end(), x.shape().begin() + dim + 1, x.shape().end());
  return index_select(x, dim, index.reshape({-1})).reshape(shape);
}

Tensor index_add(const Tensor& x, int64_t dim_in, const Tensor& index, const Tensor& src) {
  OAR_CHECK(x.defined() && src.defined(), "index_add: undefined input");
  OAR_CHECK(x.dim() >= 1, "index_add: input must have at least one dimension");
  OAR_CHECK(index.defined() && index.dim() <= 1, "index_add: index must be 1-D, got shape ",
            index.defined() ? shape_str(index.shape()) : "undefined");
  OAR_CHECK_SAME_DEVICE("index_add", x, src);
  OAR_CHECK_SAME_DEVICE("index_add", x, index);
  const int64_t dim = wrap_dim(dim_in, x.dim(), "index_add");
  const Shape want = with_size(x.shape(), dim, index.numel());
  OAR_CHECK(src.shape() == want, "index_add: src has shape ", shape_str(src.shape()), ", expected ",
            shape_str(want), " for input ", shape_str(x.shape()), " and ", index.numel(),
            " indices along dimension ", dim);
  const Tensor idx = valid_indices(index.reshape({-1}), x.size(dim), dim, true, "index_add");
  Tensor out = add_slices(x, dim, idx, src);
  if (autograd::needs_grad({x, src})) {
    autograd::record("index_add", {&out}, {x, src}, [idx, dim](const autograd::Grads& g) {
      return autograd::TensorList{g.needs(0) ? g[0] : Tensor(),
                                  g.needs(1) ? select_slices(g[0], dim, idx) : Tensor()};
    });
  }
  return out;
}

Tensor embedding(const Tensor& weight, const Tensor& ids, int64_t padding_idx) {
  OAR_CHECK(weight.defined() && ids.defined(), "embedding: undefined input");
  OAR_CHECK(weight.dim() == 2, "embedding: weight must be [V, D], got ", shape_str(weight.shape()));
  OAR_CHECK_SAME_DEVICE("embedding", weight, ids);
  const int64_t V = weight.size(0), D = weight.size(1);
  OAR_CHECK(padding_idx < V, "embedding: padding_idx ", padding_idx,
            " out of range for a vocabulary of ", V);
  const Tensor idx = valid_indices(ids.reshape({-1}), V, 0, false, "embedding");
  Shape shape = ids.shape();
  shape.push_back(D);
  Tensor out = select_slices(weight, 0, idx).view(shape);
  if (autograd::needs_grad({weight})) {
    autograd::record(
        "embedding", {&out}, {weight},
        [idx, padding_idx, ws = weight.shape(), dt = weight.dtype(), D](const autograd::Grads& g) {
          Tensor gw = scatter_slices(ws, dt, 0, idx, g[0].reshape({-1, D}));
          if (padding_idx >= 0) gw.select(0, padding_idx).zero_();
          return autograd::TensorList{gw};
        });
  }
  return out;
}

Tensor gather(const Tensor& x, int64_t dim_in, const Tensor& index) {
  OAR_CHECK(x.defined(), "gather: undefined input");
  OAR_CHECK(x.dim() >= 1, "gather: input must have at least one dimension");
  OAR_CHECK_SAME_DEVICE("gather", x, index);
  const int64_t dim = wrap_dim(dim_in, x.dim(), "gather");
  check_elementwise_index(x, dim, index, nullptr, "gather");
  const Tensor idx = valid_indices(index, x.size(dim), dim, true, "gather");
  Tensor out = gather_raw(x, dim, idx);
  if (autograd::needs_grad({x})) {
    autograd::record("gather", {&out}, {x},
                     [idx, dim, shape = x.shape(), dt = x.dtype()](const autograd::Grads& g) {
                       // half types accumulate repeated indices in f32
                       const bool half = dt == DType::bf16 || dt == DType::f16;
                       const Tensor z = zeros(shape, half ? DType::f32 : dt, g[0].device());
                       scatter_add_(z, dim, idx, g[0]);
                       return autograd::TensorList{half ? z.to(dt) : z};
                     });
  }
  return out;
}

Tensor scatter_add(const Tensor& x, int64_t dim_in, const Tensor& index, const Tensor& src) {
  OAR_CHECK(x.defined() && src.defined(), "scatter_add: undefined input");
  OAR_CHECK(x.dim() >= 1, "scatter_add: input must have at least one dimension");
  OAR_CHECK_SAME_DEVICE("scatter_add", x, src);
  OAR_CHECK_SAME_DEVICE("scatter_add", x, index);
  OAR_CHECK(src.dim() == x.dim(), "scatter_add: src of shape ", shape_str(src.shape()),
            " must have the rank of the input ", shape_str(x.shape()));
  const int64_t dim = wrap_dim(dim_in, x.dim(), "scatter_add");
  check_elementwise_index(x, dim, index, &src, "scatter_add");
  const Tensor idx = valid_indices(index, x.size(dim), dim, true, "scatter_add");
  Tensor out = x.detach().clone();
  scatter_add_(out, dim, idx, src);
  if (autograd::needs_grad({x, src})) {
    autograd::record("scatter_add", {&out}, {x, src},
                     [idx, dim, ss = src.shape(), sdt = src.dtype()](const autograd::Grads& g) {
                       Tensor gsrc;
                       if (g.needs(1)) {
                         Tensor picked = gather_raw(g[0], dim, idx);
                         if (picked.dtype() != sdt) picked = picked.to(sdt);
                         if (picked.shape() == ss) {
                           gsrc = picked;
                         } else {  // src larger than index: the rest got no use
                           gsrc = zeros(ss, sdt, g[0].device());
                           Tensor region = gsrc;
                           for (int64_t d = 0; d < picked.dim(); ++d)
                             region = region.narrow(d, 0, picked.size(d));
                           region.copy_(picked);
                         }
                       }
                       return autograd::TensorList{g.needs(0) ? g[0] : Tensor(), gsrc};
                     });
  }
  return out;
}

}  // namespace oar
