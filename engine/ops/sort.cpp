#include "engine/ops/sort.h"

#include "engine/autograd/node.h"
#include "engine/core/error.h"
#include "engine/ops/dispatch.h"

namespace oar {

namespace cpu {
// values and i64 indices (contiguous, x's shape with k along dim) = the first k of each row of x
// along dim in order (descending when `descending`), ties by lower index, NaN counted largest.
void sort_rows(const Tensor& values, const Tensor& indices, const Tensor& x, int64_t dim, int64_t k,
               bool descending);
// out (contiguous, x's shape) = running sums of x along dim.
void cumsum(const Tensor& out, const Tensor& x, int64_t dim, bool exclusive, bool reverse);
// Defined with max/min (engine/ops/cpu/minmax.cpp): out = zeros with src put at index along dim.
void put_along(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src);
}  // namespace cpu
#ifdef OAR_WITH_CUDA
namespace cuda {
void sort_rows(const Tensor& values, const Tensor& indices, const Tensor& x, int64_t dim, int64_t k,
               bool descending);
void cumsum(const Tensor& out, const Tensor& x, int64_t dim, bool exclusive, bool reverse);
void put_along(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src);
}  // namespace cuda
#endif

namespace {

std::pair<Tensor, Tensor> select_sorted(const Tensor& x_in, int64_t k, int64_t dim, bool descending,
                                        const char* op) {
  OAR_CHECK(x_in.defined(), op, ": undefined input");
  OAR_CHECK(x_in.dtype() != DType::boolean, op, ": dtype bool not supported (numeric types only)");
  const Tensor x = x_in.dim() == 0 ? x_in.reshape({1}) : x_in;
  const int64_t d = wrap_dim(dim, x.dim(), op);
  const int64_t n = x.size(d);
  if (k < 0) k = n;
  OAR_CHECK(k <= n, op, ": k = ", k, " is larger than dimension ", dim, " of ",
            shape_str(x_in.shape()), " (size ", n, ")");
  Shape shape = x.shape();
  shape[static_cast<size_t>(d)] = k;
  Tensor values = empty(shape, x.dtype(), x.device());
  Tensor indices = empty(shape, DType::i64, x.device());
  OAR_DISPATCH_GPU(x.device(), sort_rows, values, indices, x, d, k, descending);
  if (x_in.dim() == 0) {
    values = values.view({});
    indices = indices.view({});
  }
  if (autograd::needs_grad({x_in})) {
    autograd::record(op, {&values}, {x_in},
                     [d, idx = indices.reshape(shape).detach(), shape1 = x.shape(),
                      shape0 = x_in.shape()](const autograd::Grads& g) {
                       const Tensor gv = g[0].reshape(idx.shape()).contiguous();
                       Tensor gx = empty(shape1, gv.dtype(), gv.device());
                       OAR_DISPATCH_GPU(gv.device(), put_along, gx, d, idx, gv);
                       return autograd::TensorList{gx.view(shape0)};
                     });
  }
  return {values, indices};
}

}  // namespace

std::pair<Tensor, Tensor> topk(const Tensor& x, int64_t k, int64_t dim, bool largest, bool sorted) {
  OAR_CHECK(k >= 0, "topk: k must be >= 0, got ", k);
  // Always sorted: an unsorted result may come in any order, so the sorted one is valid too.
  (void)sorted;
  return select_sorted(x, k, dim, largest, "topk");
}

std::pair<Tensor, Tensor> sort(const Tensor& x, int64_t dim, bool descending) {
  return select_sorted(x, -1, dim, descending, "sort");
}

Tensor argsort(const Tensor& x, int64_t dim, bool descending) {
  return select_sorted(x.detach(), -1, dim, descending, "argsort").second;
}

Tensor cumsum(const Tensor& x_in, int64_t dim, bool exclusive, bool reverse) {
  OAR_CHECK(x_in.defined(), "cumsum: undefined input");
  const Tensor x = x_in.dim() == 0 ? x_in.reshape({1}) : x_in;
  const int64_t d = wrap_dim(dim, x.dim(), "cumsum");
  const DType dt = is_floating(x.dtype()) ? x.dtype() : DType::i64;
  Tensor out = empty(x.shape(), dt, x.device());
  OAR_DISPATCH_GPU(x.device(), cumsum, out, x, d, exclusive, reverse);
  out = out.view(x_in.shape());
  if (autograd::needs_grad({x_in})) {
    autograd::record("cumsum", {&out}, {x_in}, [d, exclusive, reverse](const autograd::Grads& g) {
      // The sum that reaches x[i] runs over the outputs on the other side of i.
      const Tensor gx = g[0].dim() == 0 ? g[0].reshape({1}) : g[0];
      return autograd::TensorList{cumsum(gx, d, exclusive, !reverse).reshape(g[0].shape())};
    });
  }
  return out;
}

}  // namespace oar
