#include "engine/ops/conv.h"
#include "engine/autograd/autocast.h"

#include "engine/autograd/node.h"
#include "engine/core/error.h"
#include "engine/ops/binary.h"
#include "engine/ops/conv_backward.h"
#include "engine/ops/conv_bn.h"
#include "engine/ops/conv_fused.h"
#include "engine/ops/conv_layout.h"
#include "engine/ops/dispatch.h"
#include "engine/ops/norm.h"
#include "engine/ops/reduce.h"
#include "engine/ops/unary.h"
#include "engine/ops/where.h"

namespace oar {

namespace cpu {
// out [N, O, *out] = conv(x, w) + bias (bias may be undefined; w contiguous). out is contiguous,
// or channels-last (conv_layout.h) when x is.
void conv_forward(const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias,
                  const ConvGeometry& g, bool cache_weight);
// out = act(conv(x, w) + bias + residual) (residual: out's shape and dtype, contiguous or
// channels-last, or undefined).
void conv_forward_fused(const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias,
                        const Tensor& residual, ConvActivation act, const ConvGeometry& g,
                        bool cache_weight);
// gx (contiguous) = dL/dx from gy (contiguous) and w (contiguous).
void conv_backward_data(const Tensor& gx, const Tensor& gy, const Tensor& w, const ConvGeometry& g,
                        bool cache_weight);
// gw (contiguous) and gb ([O] or undefined) from x and gy (contiguous).
void conv_backward_weights(const Tensor& gw, const Tensor& gb, const Tensor& x, const Tensor& gy,
                           const ConvGeometry& g);
// Both of the above, reordering gy into oneDNN's layout once for the two.
void conv_backward(const Tensor& gx, const Tensor& gw, const Tensor& gb, const Tensor& x,
                   const Tensor& gy, const Tensor& w, const ConvGeometry& g, bool cache_weight);
// engine/ops/cpu/copy.cpp: dst = src (same shape and dtype, f32 or bf16, any strides but no
// broadcast dims) by one cached oneDNN reorder.
void copy_strided(const Tensor& dst, const Tensor& src);
}  // namespace cpu
#ifdef OAR_WITH_CUDA
namespace cuda {
void conv_forward(const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias,
                  const ConvGeometry& g, bool cache_weight);
void conv_backward_data(const Tensor& gx, const Tensor& gy, const Tensor& w, const ConvGeometry& g,
                        bool cache_weight);
void conv_backward_weights(const Tensor& gw, const Tensor& gb, const Tensor& x, const Tensor& gy,
                           const ConvGeometry& g);
}  // namespace cuda
#endif

namespace {

// A dim expanded with stride 0 (oneDNN takes any strides, but not those).
bool has_broadcast_dim(const Tensor& t) {
  for (int64_t d = 0; d < t.dim(); ++d)
    if (t.stride(d) == 0 && t.size(d) > 1) return true;
  return false;
}

std::vector<int64_t> per_dim(const char* op, const char* what, const std::vector<int64_t>& v,
                             size_t n, int64_t fallback, int64_t min) {
  std::vector<int64_t> out;
  if (v.empty())
    out.assign(n, fallback);
  else if (v.size() == 1)
    out.assign(n, v[0]);
  else if (v.size() == n)
    out = v;
  else
    OAR_FAIL(op, ": ", what, " has ", v.size(), " values for ", n, " spatial dims");
  for (int64_t x : out)
    OAR_CHECK(x >= min, op, ": ", what, " ", x, " is below ", min, " (", what, " ", shape_str(v),
              ")");
  return out;
}

void check_dtype(const char* op, const Tensor& t, const char* what) {
  OAR_CHECK(t.dtype() == DType::f32 || t.dtype() == DType::bf16 || t.dtype() == DType::f16, op,
            ": ", what, " dtype ", dtype_name(t.dtype()), " not supported (f32, bf16 or f16)");
}

}  // namespace

ConvGeometry conv_geometry(const char* op, const Shape& x, const Shape& w, const ConvParams& p) {
  OAR_CHECK(x.size() >= 3 && x.size() <= 5, op, ": input must be [N, C, *spatial] with 1-3 ",
            "spatial dims, got ", shape_str(x));
  const size_t n = x.size() - 2;
  OAR_CHECK(w.size() == x.size(), op, ": weight ", shape_str(w), " must have the rank of input ",
            shape_str(x), " ([O, C/groups, *kernel])");
  ConvGeometry g;
  g.groups = p.groups;
  OAR_CHECK(p.groups >= 1 && x[1] % p.groups == 0 && w[0] % p.groups == 0, op, ": groups ",
            p.groups, " must divide input channels ", x[1], " and output channels ", w[0]);
  OAR_CHECK(w[1] * p.groups == x[1], op, ": weight ", shape_str(w), " expects ", w[1] * p.groups,
            " input channels (groups ", p.groups, "), input ", shape_str(x), " has ", x[1]);
  g.stride = per_dim(op, "stride", p.stride, n, 1, 1);
  g.dilation = per_dim(op, "dilation", p.dilation, n, 1, 1);
  if (p.padding.size() == 2 * n && n > 1) {
    g.pad_begin.assign(p.padding.begin(), p.padding.begin() + n);
    g.pad_end.assign(p.padding.begin() + n, p.padding.end());
    for (int64_t v : p.padding)
      OAR_CHECK(v >= 0, op, ": padding ", shape_str(p.padding), " must not be negative");
  } else if (p.padding.size() == 2 && n == 1) {
    g.pad_begin = {p.padding[0]};
    g.pad_end = {p.padding[1]};
    OAR_CHECK(p.padding[0] >= 0 && p.padding[1] >= 0, op, ": padding ", shape_str(p.padding),
              " must not be negative");
  } else {
    g.pad_begin = g.pad_end = per_dim(op, "padding", p.padding, n, 0, 0);
  }
  for (size_t d = 0; d < n; ++d) {
    const int64_t span = g.dilation[d] * (w[2 + d] - 1) + 1;
    OAR_CHECK(x[2 + d] + g.pad_begin[d] + g.pad_end[d] >= span, op, ": kernel ", shape_str(w),
              " (dilation ", g.dilation[d], ") is larger than the padded input ", shape_str(x),
              " in spatial dim ", d);
  }
  return g;
}

Shape conv_output_shape(const Shape& x, const Shape& w, const ConvGeometry& g) {
  Shape out{x[0], w[0]};
  for (size_t d = 0; d + 2 < x.size(); ++d) {
    const int64_t span = g.dilation[d] * (w[2 + d] - 1) + 1;
    out.push_back((x[2 + d] + g.pad_begin[d] + g.pad_end[d] - span) / g.stride[d] + 1);
  }
  return out;
}

Tensor conv_backward_data(const Tensor& grad_out, const Tensor& weight, const Shape& x_shape,
                          const ConvGeometry& g, bool cache_weight) {
  Tensor gx = empty(x_shape, grad_out.dtype(), grad_out.device());
  if (gx.numel() == 0) return gx;
  if (grad_out.numel() == 0 || weight.numel() == 0) return gx.zero_();
  OAR_DISPATCH_GPU(grad_out.device(), conv_backward_data, gx, grad_out.contiguous(),
                   weight.contiguous(), g, cache_weight && weight.is_contiguous());
  return gx;
}

std::pair<Tensor, Tensor> conv_backward_weights(const Tensor& x, const Tensor& grad_out,
                                                const Shape& w_shape, bool with_bias,
                                                DType bias_dtype, const ConvGeometry& g) {
  Tensor gw = empty(w_shape, x.dtype(), x.device());
  Tensor gb = with_bias ? empty({w_shape[0]}, bias_dtype, x.device()) : Tensor();
  if (gw.numel() == 0) return {gw, gb.defined() ? gb.zero_() : gb};
  if (grad_out.numel() == 0 || x.numel() == 0) {
    gw.zero_();
    if (gb.defined()) gb.zero_();
    return {gw, gb};
  }
  OAR_DISPATCH_GPU(x.device(), conv_backward_weights, gw, gb, x, grad_out.contiguous(), g);
  return {gw, gb};
}

namespace {

Tensor apply_activation(const Tensor& h, ConvActivation act) {
  switch (act) {
    case ConvActivation::relu:
      return relu(h);
    case ConvActivation::relu6:
      return relu6(h);
    default:
      return h;
  }
}

// gy where the activation passed its input (judged from the output: relu's output is positive
// exactly where its input is, relu6's inside (0, 6) exactly where its input is).
Tensor activation_grad(const Tensor& gy, const Tensor& out, ConvActivation act) {
  if (act == ConvActivation::relu) return masked_fill(gy, le(out, 0.0), 0.0);
  if (act == ConvActivation::relu6)
    return masked_fill(gy, logical_or(le(out, 0.0), ge(out, 6.0)), 0.0);
  return gy;
}

Tensor conv_impl(const Tensor& x_arg, const Tensor& w_arg, const Tensor& b_arg, const ConvParams& p,
                 const Tensor& res_arg, ConvActivation act) {
  Tensor x_in = x_arg, w_in = w_arg, b_in = b_arg;
  autocast_inputs("conv", {&x_in, &w_in, &b_in});
  OAR_CHECK(x_in.defined() && w_in.defined(), "conv: undefined input or weight");
  OAR_CHECK_SAME_DEVICE("conv", x_in, w_in);
  check_dtype("conv", x_in, "input");
  OAR_CHECK(w_in.dtype() == x_in.dtype(), "conv: weight dtype ", dtype_name(w_in.dtype()),
            " differs from input dtype ", dtype_name(x_in.dtype()));
  const ConvGeometry g = conv_geometry("conv", x_in.shape(), w_in.shape(), p);
  if (b_in.defined()) {
    OAR_CHECK_SAME_DEVICE("conv", x_in, b_in);
    OAR_CHECK(b_in.dim() == 1 && b_in.size(0) == w_in.size(0), "conv: bias must be [", w_in.size(0),
              "], got ", shape_str(b_in.shape()));
    OAR_CHECK(b_in.dtype() == x_in.dtype() || b_in.dtype() == DType::f32, "conv: bias dtype ",
              dtype_name(b_in.dtype()), " must be the input's (", dtype_name(x_in.dtype()),
              ") or f32");
  }
  const Tensor x = has_broadcast_dim(x_in) ? x_in.detach().contiguous() : x_in.detach();
  const Tensor w = w_in.detach().contiguous();
  // A parameter (a contiguous leaf) keeps its reordered copy between calls.
  const bool cache_weight = w_in.is_leaf() && w_in.is_contiguous();
  const Tensor bias = b_in.defined() ? b_in.detach().contiguous() : Tensor();
  const Shape out_shape = conv_output_shape(x.shape(), w.shape(), g);
  const bool fuse = res_arg.defined() || act != ConvActivation::none;
  if (fuse) {
    OAR_CHECK(!res_arg.defined() || res_arg.shape() == out_shape, "conv_fused: residual ",
              shape_str(res_arg.shape()), " must have the output's shape ", shape_str(out_shape));
    if (res_arg.defined()) OAR_CHECK_SAME_DEVICE("conv_fused", x_in, res_arg);
    // Where one pass cannot do it: the same ops one after another.
    if (!x.device().is_cpu() || x.numel() == 0 || w.numel() == 0 ||
        (res_arg.defined() && res_arg.dtype() != x.dtype())) {
      Tensor h = conv_impl(x_in, w_in, b_in, p, Tensor(), ConvActivation::none);
      if (res_arg.defined()) h = h + res_arg;
      return apply_activation(h, act);
    }
  }
  // A channels-last input on the CPU gives a channels-last output (conv_layout.h); a channels-last
  // residual then goes in as it is.
  const bool channels_last = x.device().is_cpu() && is_channels_last(x);
  Tensor residual;
  if (res_arg.defined()) {
    residual = res_arg.detach();
    if (!channels_last || !is_channels_last(residual)) residual = residual.contiguous();
  }
  Tensor out = channels_last ? empty_channels_last(out_shape, x.dtype(), x.device())
                             : empty(out_shape, x.dtype(), x.device());
  if (fuse) {
    if (out.numel() > 0) cpu::conv_forward_fused(out, x, w, bias, residual, act, g, cache_weight);
  } else if (out.numel() > 0) {
    if (x.numel() == 0 || w.numel() == 0) {
      Shape s(out.dim(), 1);
      s[1] = out.size(1);
      if (bias.defined())
        out.copy_(bias.view(s));
      else
        out.zero_();
    } else {
      OAR_DISPATCH_GPU(x.device(), conv_forward, out, x, w, bias, g, cache_weight);
    }
  }
  if (autograd::needs_grad({x_in, w_in, b_in, res_arg})) {
    autograd::record(
        fuse ? "conv_fused" : "conv", {&out}, {x_in, w_in, b_in, res_arg},
        [x, w, g, cache_weight, bias_dtype = b_in.defined() ? b_in.dtype() : x.dtype(), act,
         o = act != ConvActivation::none ? out.detach() : Tensor()](const autograd::Grads& gr) {
          const Tensor gy = activation_grad(gr[0], o, act);
          Tensor gx, gw, gb;
          if (gr.needs(0) && gr.needs(1) && x.device().is_cpu() && gy.numel() > 0 &&
              x.numel() > 0 && w.numel() > 0) {  // gy reordered once for both (oneDNN)
            gx = empty(x.shape(), gy.dtype(), x.device());
            gw = empty(w.shape(), x.dtype(), x.device());
            if (gr.needs(2)) gb = empty({w.size(0)}, bias_dtype, x.device());
            cpu::conv_backward(gx, gw, gb, x, gy.contiguous(), w, g, cache_weight);
            return autograd::TensorList{gx, gw, gb, gr.needs(3) ? gy : Tensor()};
          }
          if (gr.needs(0)) gx = conv_backward_data(gy, w, x.shape(), g, cache_weight);
          if (gr.needs(1)) {
            std::tie(gw, gb) = conv_backward_weights(x, gy, w.shape(), gr.needs(2), bias_dtype, g);
          } else if (gr.needs(2)) {
            Shape dims{0};
            for (int64_t d = 2; d < gy.dim(); ++d) dims.push_back(d);
            gb = sum(gy, dims);
            if (gb.dtype() != bias_dtype) gb = gb.to(bias_dtype);
          }
          return autograd::TensorList{gx, gw, gb, gr.needs(3) ? gy : Tensor()};
        });
  }
  return out;
}

}  // namespace

bool is_channels_last(const Tensor& t) {
  if (!t.defined() || t.dim() != 4) return false;
  const int64_t c = t.size(1), h = t.size(2), w = t.size(3);
  return t.stride(1) == 1 && t.stride(3) == c && t.stride(2) == w * c && t.stride(0) == h * w * c;
}

Tensor to_channels_last(const Tensor& t) {
  OAR_CHECK(t.defined() && t.dim() == 4,
            "to_channels_last: expected a 4-D [N, C, H, W] tensor, got ",
            t.defined() ? shape_str(t.shape()) : std::string("an undefined tensor"));
  if (is_channels_last(t)) return t;
  if (t.device().is_cpu() && (t.dtype() == DType::f32 || t.dtype() == DType::bf16) &&
      !has_broadcast_dim(t) && t.numel() > 0 && !autograd::needs_grad({t})) {
    Tensor out = empty_channels_last(t.shape(), t.dtype(), t.device());  // one oneDNN reorder
    cpu::copy_strided(out, t);
    return out;
  }
  // view() gives the NHWC copy exact strides even where a size-1 dim let contiguous() keep them.
  return t.permute({0, 2, 3, 1})
      .contiguous()
      .view({t.size(0), t.size(2), t.size(3), t.size(1)})
      .permute({0, 3, 1, 2});
}

Tensor empty_channels_last(const Shape& shape, DType dtype, Device device) {
  OAR_CHECK(shape.size() == 4, "empty_channels_last: expected a 4-D shape, got ", shape_str(shape));
  return empty({shape[0], shape[2], shape[3], shape[1]}, dtype, device).permute({0, 3, 1, 2});
}

Tensor conv(const Tensor& x, const Tensor& w, const Tensor& b, const ConvParams& p) {
  return conv_impl(x, w, b, p, Tensor(), ConvActivation::none);
}

Tensor conv_fused(const Tensor& x, const Tensor& w, const Tensor& b, const ConvParams& p,
                  const Tensor& residual, ConvActivation act) {
  return conv_impl(x, w, b, p, residual, act);
}

Tensor conv_bn_train(const Tensor& x, const Tensor& weight, const ConvParams& p,
                     const BatchNormArgs& bn, const Tensor& residual, ConvActivation act) {
  const char* op = "conv_bn_train";
  OAR_CHECK(x.defined() && weight.defined(), op, ": undefined input or weight");
  auto unfused = [&] {
    Tensor h = conv(x, weight, Tensor(), p);
    h = batch_norm(h, bn.running_mean, bn.running_var, bn.weight, bn.bias, true, bn.momentum,
                   bn.eps);
    if (residual.defined()) h = h + residual;
    return apply_activation(h, act);
  };
  auto f32_cpu = [&](const Tensor& t) {
    return !t.defined() || (t.dtype() == DType::f32 && t.device().is_cpu());
  };
  if (x.dim() != 4 || !f32_cpu(x) || !f32_cpu(weight) || !f32_cpu(bn.weight) || !f32_cpu(bn.bias) ||
      !f32_cpu(residual) || autocast_enabled() || x.numel() == 0 || weight.numel() == 0 ||
      bn.eps <= 0)
    return unfused();
  const ConvGeometry g = conv_geometry(op, x.shape(), weight.shape(), p);
  const Shape out_shape = conv_output_shape(x.shape(), weight.shape(), g);
  const int64_t c = out_shape[1];
  const int64_t count = out_shape[0] * out_shape[2] * out_shape[3];
  const Shape cs{c};
  const bool params_ok = (!bn.weight.defined() || bn.weight.shape() == cs) &&
                         (!bn.bias.defined() || bn.bias.shape() == cs) &&
                         bn.running_mean.defined() == bn.running_var.defined() &&
                         (!bn.running_mean.defined() ||
                          (bn.running_mean.shape() == cs && bn.running_var.shape() == cs &&
                           bn.running_mean.device().is_cpu() && bn.running_var.device().is_cpu()));
  if (!params_ok || count < 2 || (residual.defined() && residual.shape() != out_shape))
    return unfused();  // the ops one by one give the usual messages
  const Tensor xd = has_broadcast_dim(x) ? x.detach().contiguous() : x.detach();
  const Tensor w = weight.detach().contiguous();
  const bool cache_weight = weight.is_leaf() && weight.is_contiguous();
  const Tensor gamma = bn.weight.defined() ? bn.weight.detach().contiguous() : Tensor();
  const Tensor beta = bn.bias.defined() ? bn.bias.detach().contiguous() : Tensor();
  const Tensor res = residual.defined() ? residual.detach().contiguous() : Tensor();
  Tensor out = empty(out_shape, DType::f32, x.device());
  Tensor mean = empty(cs, DType::f32, x.device()), var = empty(cs, DType::f32, x.device());
  auto saved = std::make_shared<cpu::ConvBnSaved>();
  if (!cpu::conv_bn_forward(*saved, out, mean, var, xd, w, gamma, beta, res, act, bn.eps, g,
                            cache_weight))
    return unfused();
  if (bn.running_mean.defined()) {  // PyTorch's update: unbiased variance
    Tensor rm = bn.running_mean, rv = bn.running_var;
    mul_(rm, 1.0 - bn.momentum);
    add_(rm, mean, bn.momentum);
    mul_(rv, 1.0 - bn.momentum);
    add_(rv, var, bn.momentum * static_cast<double>(count) / static_cast<double>(count - 1));
  }
  if (autograd::needs_grad({x, weight, bn.weight, bn.bias, residual})) {
    // The output is the activation's mask only when a residual went in before it; otherwise
    // backward recomputes the mask from the blocked convolution output.
    const Tensor o = res.defined() && act != ConvActivation::none ? out.detach() : Tensor();
    autograd::record(
        op, {&out}, {x, weight, bn.weight, bn.bias, residual},
        [saved, w, mean, var, gamma, beta, act, eps = bn.eps, g, cache_weight, o,
         x_shape = x.shape()](const autograd::Grads& gr) {
          Tensor gout = gr.grad_or_zeros(0);
          if (gout.dtype() != DType::f32) gout = gout.to(DType::f32);
          gout = gout.contiguous();
          const int64_t c = w.size(0);
          Tensor gx = gr.needs(0) ? empty(x_shape, DType::f32, w.device()) : Tensor();
          Tensor gw = gr.needs(1) ? empty(w.shape(), DType::f32, w.device()) : Tensor();
          Tensor gg = gr.needs(2) ? empty({c}, DType::f32, w.device()) : Tensor();
          Tensor gb = gr.needs(3) ? empty({c}, DType::f32, w.device()) : Tensor();
          // Without an activation dL/dresidual is dL/dout itself.
          const bool masked = gr.needs(4) && act != ConvActivation::none;
          Tensor gres = masked ? empty(gout.shape(), DType::f32, w.device()) : Tensor();
          cpu::conv_bn_backward(*saved, gx, gw, gg, gb, gres, gout, o, w, mean, var, gamma, beta,
                                act, eps, g, cache_weight);
          if (gr.needs(4) && !masked) gres = gout;
          return autograd::TensorList{gx, gw, gg, gb, gres};
        });
  }
  return out;
}

Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride,
              int64_t padding, int64_t dilation, int64_t groups) {
  OAR_CHECK(!x.defined() || x.dim() == 3, "conv1d: input must be [N, C, L], got ",
            shape_str(x.shape()));
  return conv(x, weight, bias, ConvParams{{stride}, {padding}, {dilation}, groups});
}

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
              std::vector<int64_t> stride, std::vector<int64_t> padding,
              std::vector<int64_t> dilation, int64_t groups) {
  OAR_CHECK(!x.defined() || x.dim() == 4, "conv2d: input must be [N, C, H, W], got ",
            shape_str(x.shape()));
  return conv(x, weight, bias,
              ConvParams{std::move(stride), std::move(padding), std::move(dilation), groups});
}

Tensor conv3d(const Tensor& x, const Tensor& weight, const Tensor& bias,
              std::vector<int64_t> stride, std::vector<int64_t> padding,
              std::vector<int64_t> dilation, int64_t groups) {
  OAR_CHECK(!x.defined() || x.dim() == 5, "conv3d: input must be [N, C, D, H, W], got ",
            shape_str(x.shape()));
  return conv(x, weight, bias,
              ConvParams{std::move(stride), std::move(padding), std::move(dilation), groups});
}

}  // namespace oar
