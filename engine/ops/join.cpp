#include "engine/ops/join.h"

#include <algorithm>

#include "engine/autograd/grad_mode.h"
#include "engine/autograd/node.h"
#include "engine/core/error.h"
#include "engine/ops/binary.h"
#include "engine/ops/dispatch.h"
#include "engine/ops/index.h"
#include "engine/ops/reduce.h"

namespace oar {

enum class PadMode { constant, reflect, edge };

namespace cpu {
// out (contiguous) = xs (same dtype) laid end to end along dim.
void concat(const Tensor& out, const std::vector<Tensor>& xs, int64_t dim);
// out (contiguous) = x padded by pads (validated) in mode, `value` in constant mode.
void pad(const Tensor& out, const Tensor& x, const std::vector<int64_t>& pads, PadMode mode,
         double value);
}  // namespace cpu
#ifdef OAR_WITH_CUDA
namespace cuda {
void concat(const Tensor& out, const std::vector<Tensor>& xs, int64_t dim);
void pad(const Tensor& out, const Tensor& x, const std::vector<int64_t>& pads, PadMode mode,
         double value);
}  // namespace cuda
#endif

Tensor concat(const std::vector<Tensor>& xs, int64_t dim_in) {
  OAR_CHECK(!xs.empty(), "concat: no inputs");
  for (size_t i = 0; i < xs.size(); ++i)
    OAR_CHECK(xs[i].defined(), "concat: input ", i, " is undefined");
  const Tensor& first = xs[0];
  OAR_CHECK(first.dim() >= 1, "concat: inputs must have at least one dimension (use stack)");
  const int64_t dim = wrap_dim(dim_in, first.dim(), "concat");
  DType dt = first.dtype();
  Shape shape = first.shape();
  shape[dim] = 0;
  std::vector<int64_t> sizes;
  for (size_t i = 0; i < xs.size(); ++i) {
    const Tensor& x = xs[i];
    OAR_CHECK_SAME_DEVICE("concat", first, x);
    bool same = x.dim() == first.dim();
    for (int64_t d = 0; same && d < x.dim(); ++d) same = d == dim || x.size(d) == first.size(d);
    OAR_CHECK(same, "concat: input ", i, " has shape ", shape_str(x.shape()), ", input 0 has ",
              shape_str(first.shape()), "; they may differ only in dimension ", dim);
    dt = promote_types(dt, x.dtype());
    sizes.push_back(x.size(dim));
    shape[dim] += x.size(dim);
  }
  std::vector<Tensor> cs;
  cs.reserve(xs.size());
  for (const Tensor& x : xs) cs.push_back(x.dtype() == dt ? x.detach() : x.detach().to(dt));
  Tensor out = empty(shape, dt, first.device());
  OAR_DISPATCH_GPU(first.device(), concat, out, cs, dim);
  if (autograd::needs_grad(xs)) {
    autograd::record("concat", {&out}, xs, [sizes, dim](const autograd::Grads& g) {
      autograd::TensorList gs(sizes.size());
      int64_t off = 0;
      for (size_t i = 0; i < sizes.size(); ++i) {
        if (g.needs(i)) gs[i] = g[0].narrow(dim, off, sizes[i]);
        off += sizes[i];
      }
      return gs;
    });
  }
  return out;
}

Tensor stack(const std::vector<Tensor>& xs, int64_t dim_in) {
  OAR_CHECK(!xs.empty(), "stack: no inputs");
  for (size_t i = 0; i < xs.size(); ++i) {
    OAR_CHECK(xs[i].defined(), "stack: input ", i, " is undefined");
    OAR_CHECK(xs[i].shape() == xs[0].shape(), "stack: input ", i, " has shape ",
              shape_str(xs[i].shape()), ", input 0 has ", shape_str(xs[0].shape()),
              "; all must be equal");
  }
  const int64_t dim = wrap_dim(dim_in, xs[0].dim() + 1, "stack");
  std::vector<Tensor> us;
  us.reserve(xs.size());
  for (const Tensor& x : xs) us.push_back(x.unsqueeze(dim));
  return concat(us, dim);
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim_in) {
  OAR_CHECK(x.defined(), "split: undefined input");
  OAR_CHECK(x.dim() >= 1, "split: input must have at least one dimension");
  const int64_t dim = wrap_dim(dim_in, x.dim(), "split");
  int64_t total = 0;
  for (int64_t s : sizes) {
    OAR_CHECK(s >= 0, "split: negative size ", s, " in ", shape_str(sizes));
    total += s;
  }
  OAR_CHECK(total == x.size(dim), "split: sizes ", shape_str(sizes), " add up to ", total,
            ", dimension ", dim, " of ", shape_str(x.shape()), " has ", x.size(dim));
  std::vector<Tensor> out;
  out.reserve(sizes.size());
  int64_t off = 0;
  for (int64_t s : sizes) {
    out.push_back(x.narrow(dim, off, s));
    off += s;
  }
  return out;
}

std::vector<Tensor> chunk(const Tensor& x, int64_t n, int64_t dim_in) {
  OAR_CHECK(x.defined(), "chunk: undefined input");
  OAR_CHECK(n > 0, "chunk: number of chunks must be positive, got ", n);
  OAR_CHECK(x.dim() >= 1, "chunk: input must have at least one dimension");
  const int64_t dim = wrap_dim(dim_in, x.dim(), "chunk");
  const int64_t len = x.size(dim);
  if (len == 0) return std::vector<Tensor>(static_cast<size_t>(n), x);
  const int64_t step = (len + n - 1) / n;
  std::vector<int64_t> sizes;
  for (int64_t off = 0; off < len; off += step) sizes.push_back(std::min(step, len - off));
  return split(x, sizes, dim);
}

namespace {

PadMode parse_mode(const std::string& mode) {
  if (mode == "constant") return PadMode::constant;
  if (mode == "reflect") return PadMode::reflect;
  if (mode == "edge") return PadMode::edge;
  OAR_FAIL("pad: unknown mode \"", mode, "\" (allowed: constant, reflect, edge)");
}

// Where output position o of a dimension of size n padded by `before` reads from.
int64_t pad_source(int64_t o, int64_t before, int64_t n, PadMode mode) {
  const int64_t p = o - before;
  if (p >= 0 && p < n) return p;
  if (mode == PadMode::edge) return p < 0 ? 0 : n - 1;
  return p < 0 ? -p : 2 * (n - 1) - p;
}

Tensor pad_raw(const Tensor& x, const std::vector<int64_t>& pads, PadMode mode, double value) {
  Shape shape = x.shape();
  for (int64_t d = 0; d < x.dim(); ++d) shape[d] += pads[2 * d] + pads[2 * d + 1];
  Tensor out = empty(shape, x.dtype(), x.device());
  OAR_DISPATCH_GPU(x.device(), pad, out, x, pads, mode, value);
  return out;
}

// Gradient of a reflect / edge pad: every output position adds into the input position it read,
// one dimension at a time.
Tensor pad_backward_folded(const Tensor& g, const Shape& in_shape, const std::vector<int64_t>& pads,
                           PadMode mode) {
  const DType dt = g.dtype();
  Tensor acc = (dt == DType::bf16 || dt == DType::f16) ? g.to(DType::f32) : g;
  for (int64_t d = 0; d < static_cast<int64_t>(in_shape.size()); ++d) {
    const int64_t b = pads[2 * d], a = pads[2 * d + 1], n = in_shape[d];
    if (b == 0 && a == 0) continue;
    const int64_t m = n + b + a;
    std::vector<int64_t> src(static_cast<size_t>(m));
    for (int64_t o = 0; o < m; ++o) src[o] = pad_source(o, b, n, mode);
    Shape s = acc.shape();
    s[d] = n;
    acc = index_add(zeros(s, acc.dtype(), acc.device()), d,
                    tensor<int64_t>(src, {m}).to(acc.device()), acc);
  }
  return acc.dtype() == dt ? acc : acc.to(dt);
}

}  // namespace

Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, const std::string& mode_name,
           double value) {
  OAR_CHECK(x.defined(), "pad: undefined input");
  const PadMode mode = parse_mode(mode_name);
  OAR_CHECK(static_cast<int64_t>(pads.size()) == 2 * x.dim(), "pad: ", pads.size(),
            " pads given for a tensor of rank ", x.dim(), " (need 2 per dimension: ", 2 * x.dim(),
            ")");
  for (int64_t d = 0; d < x.dim(); ++d) {
    const int64_t b = pads[2 * d], a = pads[2 * d + 1], n = x.size(d);
    OAR_CHECK(-b <= n && -a <= n && n + b + a >= 0, "pad: pads (", b, ", ", a,
              ") crop more than dimension ", d, " of size ", n, " in ", shape_str(x.shape()));
    if (mode == PadMode::reflect)
      OAR_CHECK(b < n && a < n, "pad: reflect pads (", b, ", ", a, ") of dimension ", d,
                " must be smaller than its size ", n);
    if (mode == PadMode::edge)
      OAR_CHECK(n > 0 || (b <= 0 && a <= 0), "pad: edge mode cannot pad empty dimension ", d);
  }
  Tensor out = pad_raw(x, pads, mode, value);
  if (autograd::needs_grad({x})) {
    autograd::record("pad", {&out}, {x}, [pads, mode, shape = x.shape()](const autograd::Grads& g) {
      if (mode != PadMode::constant)
        return autograd::TensorList{pad_backward_folded(g[0], shape, pads, mode)};
      std::vector<int64_t> inverse(pads.size());
      for (size_t i = 0; i < pads.size(); ++i) inverse[i] = -pads[i];
      return autograd::TensorList{pad_raw(g[0], inverse, PadMode::constant, 0.0)};
    });
  }
  return out;
}

Tensor repeat(const Tensor& x, const Shape& repeats) {
  OAR_CHECK(x.defined(), "repeat: undefined input");
  OAR_CHECK(static_cast<int64_t>(repeats.size()) >= x.dim(), "repeat: ", repeats.size(),
            " repeats given for a tensor of rank ", x.dim(), " (need at least ", x.dim(), ")");
  const size_t lead = repeats.size() - static_cast<size_t>(x.dim());
  Shape tile, tiled, out_shape;  // [1, s0, 1, s1, ...], [r0, s0, r1, s1, ...], [r0*s0, ...]
  for (size_t i = 0; i < repeats.size(); ++i) {
    OAR_CHECK(repeats[i] >= 0, "repeat: negative repeat ", repeats[i], " in ", shape_str(repeats));
    const int64_t s = i < lead ? 1 : x.size(static_cast<int64_t>(i - lead));
    tile.insert(tile.end(), {1, s});
    tiled.insert(tiled.end(), {repeats[i], s});
    out_shape.push_back(repeats[i] * s);
  }
  Tensor out = x.detach().reshape(tile).expand(tiled).clone().view(out_shape);
  if (autograd::needs_grad({x})) {
    autograd::record("repeat", {&out}, {x}, [tiled, shape = x.shape()](const autograd::Grads& g) {
      Shape tile_dims;
      for (size_t i = 0; i < tiled.size(); i += 2) tile_dims.push_back(static_cast<int64_t>(i));
      return autograd::TensorList{sum(g[0].reshape(tiled), tile_dims).reshape(shape)};
    });
  }
  return out;
}

}  // namespace oar
