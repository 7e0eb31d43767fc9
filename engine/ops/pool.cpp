#include "engine/ops/pool.h"

#include <algorithm>

#include "engine/autograd/node.h"
#include "engine/core/error.h"
#include "engine/ops/binary.h"
#include "engine/ops/conv_layout.h"
#include "engine/ops/dispatch.h"

namespace oar {

enum class PoolKind { max, avg_include_pad, avg_exclude_pad };

namespace cpu {
// oneDNN pooling of contiguous x into contiguous out, or of channels-last x into channels-last out
// (conv_layout.h; no workspace then). Window sizes per spatial dim; dilation is
// oneDNN's (0 = dense). Returns the workspace max pooling's backward needs when `training`.
Tensor pool_forward(PoolKind kind, const Tensor& out, const Tensor& x, const Shape& kernel,
                    const Shape& stride, const Shape& dilation, const Shape& pad_l,
                    const Shape& pad_r, bool training);
// gx (contiguous, overwritten) from gy (contiguous, out's shape).
void pool_backward(PoolKind kind, const Tensor& gx, const Tensor& gy, const Tensor& workspace,
                   const Shape& kernel, const Shape& stride, const Shape& dilation,
                   const Shape& pad_l, const Shape& pad_r);
// PyTorch's adaptive windows over contiguous x; argmax (i64, out's shape, flat index in the
// spatial plane) is written for max pooling.
void adaptive_pool_forward(bool is_max, const Tensor& out, const Tensor& argmax, const Tensor& x);
void adaptive_pool_backward(bool is_max, const Tensor& gx, const Tensor& gy, const Tensor& argmax);
}  // namespace cpu
#ifdef OAR_WITH_CUDA
namespace cuda {
Tensor pool_forward(PoolKind kind, const Tensor& out, const Tensor& x, const Shape& kernel,
                    const Shape& stride, const Shape& dilation, const Shape& pad_l,
                    const Shape& pad_r, bool training);
void pool_backward(PoolKind kind, const Tensor& gx, const Tensor& gy, const Tensor& workspace,
                   const Shape& kernel, const Shape& stride, const Shape& dilation,
                   const Shape& pad_l, const Shape& pad_r);
void adaptive_pool_forward(bool is_max, const Tensor& out, const Tensor& argmax, const Tensor& x);
void adaptive_pool_backward(bool is_max, const Tensor& gx, const Tensor& gy, const Tensor& argmax);
}  // namespace cuda
#endif

namespace {

struct Window {
  Shape kernel, stride, dilation, pad_l, pad_r, out;
  // PyTorch divides a window that ceil_mode pushes past the right padding by its clipped size,
  // oneDNN by the full kernel: per-output correction for average pooling, else undefined.
  Tensor scale;
};

void check_input(const char* op, const Tensor& x) {
  OAR_CHECK(x.defined(), op, ": undefined input");
  OAR_CHECK(x.dim() >= 3 && x.dim() <= 5, op,
            ": expected x [N, C, *spatial] with 1-3 spatial dims, got ", shape_str(x.shape()));
  OAR_CHECK(x.dtype() == DType::f32 || x.dtype() == DType::bf16, op, ": dtype ",
            dtype_name(x.dtype()), " not supported (f32 or bf16)");
  for (int64_t d = 2; d < x.dim(); ++d)
    OAR_CHECK(x.size(d) > 0, op, ": spatial dims of ", shape_str(x.shape()), " must be positive");
}

Shape per_dim(const char* op, const char* what, const Shape& v, size_t nd, int64_t dflt) {
  if (v.empty()) return Shape(nd, dflt);
  OAR_CHECK(v.size() == nd, op, ": ", what, " has ", v.size(), " values for ", nd, " spatial dims");
  return v;
}

Window resolve(const char* op, const Tensor& x, const PoolParams& p, PoolKind kind) {
  check_input(op, x);
  const size_t nd = static_cast<size_t>(x.dim() - 2);
  OAR_CHECK(p.kernel.size() == nd, op, ": kernel has ", p.kernel.size(), " sizes for ", nd,
            " spatial dims of x ", shape_str(x.shape()));
  Window w;
  w.kernel = p.kernel;
  w.stride = per_dim(op, "stride", p.stride, nd, 0);
  if (p.stride.empty()) w.stride = p.kernel;
  const Shape dil = per_dim(op, "dilation", p.dilation, nd, 1);
  if (p.padding.empty()) {
    w.pad_l = w.pad_r = Shape(nd, 0);
  } else if (p.padding.size() == nd) {
    w.pad_l = w.pad_r = p.padding;
  } else {
    OAR_CHECK(p.padding.size() == 2 * nd, op, ": padding has ", p.padding.size(),
              " values; expected ", nd, " or ", 2 * nd, " (begins then ends)");
    w.pad_l.assign(p.padding.begin(), p.padding.begin() + nd);
    w.pad_r.assign(p.padding.begin() + nd, p.padding.end());
  }
  const bool fix_divisor = kind == PoolKind::avg_include_pad && p.ceil_mode;
  std::vector<std::vector<float>> factors(nd);
  bool any_factor = false;
  for (size_t d = 0; d < nd; ++d) {
    const int64_t in = x.size(static_cast<int64_t>(d) + 2), k = w.kernel[d], s = w.stride[d];
    OAR_CHECK(k > 0 && s > 0, op, ": kernel ", shape_str(w.kernel), " and stride ",
              shape_str(w.stride), " must be positive");
    OAR_CHECK(dil[d] >= 1, op, ": dilation ", shape_str(dil), " must be at least 1");
    OAR_CHECK(kind == PoolKind::max || dil[d] == 1, op, ": dilation ", shape_str(dil),
              " is for max pooling only");
    const int64_t dk = dil[d] * (k - 1) + 1;
    // ONNX allows any padding smaller than the window (PyTorch only up to half of it).
    OAR_CHECK(w.pad_l[d] >= 0 && w.pad_r[d] >= 0 && w.pad_l[d] < dk && w.pad_r[d] < dk, op,
              ": padding ", shape_str(p.padding),
              " must be non-negative and smaller than the (dilated) kernel ", shape_str(w.kernel));
    const int64_t span = in + w.pad_l[d] + w.pad_r[d] - dk;
    OAR_CHECK(span >= 0, op, ": window ", dk, " is larger than the padded input ",
              shape_str(x.shape()), " along spatial dim ", d);
    int64_t o = (p.ceil_mode ? (span + s - 1) / s : span / s) + 1;
    // ceil_mode's extra window must start inside the input or the left padding.
    if (p.ceil_mode && (o - 1) * s >= in + w.pad_l[d]) --o;
    w.out.push_back(o);
    const int64_t need = (o - 1) * s + dk - in - w.pad_l[d];
    if (need > w.pad_r[d]) {
      if (fix_divisor) {
        factors[d].resize(o);
        for (int64_t i = 0; i < o; ++i) {
          const int64_t start = i * s - w.pad_l[d];
          const int64_t size = std::min(start + k, in + w.pad_r[d]) - start;
          factors[d][i] = static_cast<float>(k) / static_cast<float>(size);
          any_factor = any_factor || size != k;
        }
      }
      w.pad_r[d] = need;
    }
    w.dilation.push_back(dil[d] - 1);
  }
  if (any_factor) {
    Shape sshape{1, 1};
    for (int64_t o : w.out) sshape.push_back(o);
    std::vector<float> v(static_cast<size_t>(shape_numel(sshape)), 1.0f);
    for (size_t i = 0; i < v.size(); ++i) {
      int64_t rem = static_cast<int64_t>(i);
      for (int64_t d = static_cast<int64_t>(nd) - 1; d >= 0; --d) {
        const int64_t idx = rem % w.out[d];
        rem /= w.out[d];
        if (!factors[d].empty()) v[i] *= factors[d][idx];
      }
    }
    w.scale = tensor<float>(v, sshape).to(x.dtype()).to(x.device());
  }
  return w;
}

Tensor pool(PoolKind kind, const char* op, const Tensor& x, const PoolParams& p) {
  Window w = resolve(op, x, p, kind);
  Shape oshape{x.size(0), x.size(1)};
  oshape.insert(oshape.end(), w.out.begin(), w.out.end());
  const bool grad = autograd::needs_grad({x});
  // Outside autograd a channels-last input (a CNN's inference trunk, conv_layout.h) gives a
  // channels-last output, pooled by oneDNN's NHWC kernel with no reorder.
  const bool channels_last = !grad && x.device().is_cpu() && is_channels_last(x);
  Tensor out = channels_last ? empty_channels_last(oshape, x.dtype(), x.device())
                             : empty(oshape, x.dtype(), x.device());
  Tensor ws;
  if (out.numel() > 0)
    ws = OAR_DISPATCH_GPU(x.device(), pool_forward, kind, out,
                          channels_last ? x.detach() : x.detach().contiguous(), w.kernel, w.stride,
                          w.dilation, w.pad_l, w.pad_r, grad);
  if (w.scale.defined()) out = mul(out, w.scale);
  if (grad) {
    autograd::record(op, {&out}, {x},
                     [kind, w, ws, shape = x.shape(), dt = x.dtype(),
                      dev = x.device()](const autograd::Grads& g) {
                       Tensor gy = g[0].dtype() == dt ? g[0] : g[0].to(dt);
                       if (w.scale.defined()) gy = mul(gy, w.scale);
                       Tensor gx = empty(shape, dt, dev);
                       if (gy.numel() == 0) return autograd::TensorList{gx.zero_()};
                       OAR_DISPATCH_GPU(dev, pool_backward, kind, gx, gy.contiguous(), ws, w.kernel,
                                        w.stride, w.dilation, w.pad_l, w.pad_r);
                       return autograd::TensorList{gx};
                     });
  }
  return out;
}

Tensor adaptive(bool is_max, const char* op, const Tensor& x, const std::vector<int64_t>& out) {
  check_input(op, x);
  const int64_t nd = x.dim() - 2;
  OAR_CHECK(static_cast<int64_t>(out.size()) == nd, op, ": output size ", shape_str(out),
            " does not match the ", nd, " spatial dims of x ", shape_str(x.shape()));
  bool uniform = true;
  PoolParams p;
  for (int64_t d = 0; d < nd; ++d) {
    OAR_CHECK(out[d] > 0, op, ": output size ", shape_str(out), " must be positive");
    const int64_t in = x.size(d + 2);
    uniform = uniform && in % out[d] == 0;
    p.kernel.push_back(uniform ? in / out[d] : 1);
  }
  // Windows that tile the input exactly are ordinary pooling: let oneDNN run them.
  if (uniform) return pool(is_max ? PoolKind::max : PoolKind::avg_exclude_pad, op, x, p);
  Shape oshape{x.size(0), x.size(1)};
  oshape.insert(oshape.end(), out.begin(), out.end());
  Tensor y = empty(oshape, x.dtype(), x.device());
  Tensor argmax = is_max ? empty(oshape, DType::i64, x.device()) : Tensor();
  OAR_DISPATCH_GPU(x.device(), adaptive_pool_forward, is_max, y, argmax, x.detach().contiguous());
  if (autograd::needs_grad({x})) {
    autograd::record(op, {&y}, {x},
                     [is_max, argmax, shape = x.shape(), dt = x.dtype(),
                      dev = x.device()](const autograd::Grads& g) {
                       Tensor gy = g[0].dtype() == dt ? g[0] : g[0].to(dt);
                       Tensor gx = empty(shape, dt, dev);
                       OAR_DISPATCH_GPU(dev, adaptive_pool_backward, is_max, gx, gy.contiguous(),
                                        argmax);
                       return autograd::TensorList{gx};
                     });
  }
  return y;
}

}  // namespace

Tensor max_pool(const Tensor& x, const PoolParams& p) {
  // Integer images: the maximum is exact in f32 for u8/i32 ranges used by images.
  if (x.defined() && (x.dtype() == DType::u8 || x.dtype() == DType::i32))
    return pool(PoolKind::max, "max_pool", x.to(DType::f32), p).to(x.dtype());
  return pool(PoolKind::max, "max_pool", x, p);
}

Tensor avg_pool(const Tensor& x, const PoolParams& p) {
  return pool(p.count_include_pad ? PoolKind::avg_include_pad : PoolKind::avg_exclude_pad,
              "avg_pool", x, p);
}

Tensor adaptive_avg_pool(const Tensor& x, const std::vector<int64_t>& out) {
  return adaptive(false, "adaptive_avg_pool", x, out);
}

Tensor adaptive_max_pool(const Tensor& x, const std::vector<int64_t>& out) {
  return adaptive(true, "adaptive_max_pool", x, out);
}

Tensor global_avg_pool(const Tensor& x) {
  check_input("global_avg_pool", x);
  return adaptive(false, "global_avg_pool", x, Shape(x.dim() - 2, 1));
}

Tensor global_max_pool(const Tensor& x) {
  check_input("global_max_pool", x);
  return adaptive(true, "global_max_pool", x, Shape(x.dim() - 2, 1));
}

}  // namespace oar
