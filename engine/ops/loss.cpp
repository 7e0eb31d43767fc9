#include "engine/autograd/autocast.h"
#include "engine/ops/loss.h"

#include "engine/autograd/node.h"
#include "engine/core/error.h"
#include "engine/ops/binary.h"
#include "engine/ops/dispatch.h"
#include "engine/ops/reduce.h"
#include "engine/ops/softmax.h"
#include "engine/ops/unary.h"

namespace oar {

namespace cpu {
// Checks every target against [0, classes) (ignore_index aside) and returns the sum of the
// weights of the non-ignored targets (their count without weight). target contiguous i64.
double class_target_weight(const Tensor& target, const Tensor& weight, int64_t classes,
                           int64_t ignore_index, const char* op);
// Fused log-softmax + NLL with label smoothing eps over logits [N, C, S] (contiguous); per
// position: (1-eps)*nll_scale*w_t*(lse - x_t) + eps/C*smooth_scale*sum_c w_c*(lse - x_c).
// out is [N*S] (per position) or a scalar (the sum) when `total`; lse [N*S] f32 is kept for
// backward.
void cross_entropy(const Tensor& out, const Tensor& lse, const Tensor& logits, const Tensor& target,
                   const Tensor& weight, int64_t ignore_index, double eps, double nll_scale,
                   double smooth_scale, bool total);
// gx [N, C, S] = g * d(loss)/d(logits): softmax minus the (smoothed, weighted) one-hot; g is
// per position unless `total`.
void cross_entropy_backward(const Tensor& gx, const Tensor& g, const Tensor& lse,
                            const Tensor& logits, const Tensor& target, const Tensor& weight,
                            int64_t ignore_index, double eps, double nll_scale, double smooth_scale,
                            bool total);
// out = -scale * w_t * log_probs[n, t, s] per position, or their sum when `total`.
void nll_loss(const Tensor& out, const Tensor& log_probs, const Tensor& target,
              const Tensor& weight, int64_t ignore_index, double scale, bool total);
void nll_loss_backward(const Tensor& gx, const Tensor& g, const Tensor& target,
                       const Tensor& weight, int64_t ignore_index, double scale, bool total);
// Elementwise smooth L1 of (input - target) and its derivative times g.
void smooth_l1(const Tensor& out, const Tensor& input, const Tensor& target, double beta);
void smooth_l1_backward(const Tensor& out, const Tensor& g, const Tensor& input,
                        const Tensor& target, double beta);
}  // namespace cpu
#ifdef OAR_WITH_CUDA
namespace cuda {
double class_target_weight(const Tensor& target, const Tensor& weight, int64_t classes,
                           int64_t ignore_index, const char* op);
void cross_entropy(const Tensor& out, const Tensor& lse, const Tensor& logits, const Tensor& target,
                   const Tensor& weight, int64_t ignore_index, double eps, double nll_scale,
                   double smooth_scale, bool total);
void cross_entropy_backward(const Tensor& gx, const Tensor& g, const Tensor& lse,
                            const Tensor& logits, const Tensor& target, const Tensor& weight,
                            int64_t ignore_index, double eps, double nll_scale, double smooth_scale,
                            bool total);
void nll_loss(const Tensor& out, const Tensor& log_probs, const Tensor& target,
              const Tensor& weight, int64_t ignore_index, double scale, bool total);
void nll_loss_backward(const Tensor& gx, const Tensor& g, const Tensor& target,
                       const Tensor& weight, int64_t ignore_index, double scale, bool total);
void smooth_l1(const Tensor& out, const Tensor& input, const Tensor& target, double beta);
void smooth_l1_backward(const Tensor& out, const Tensor& g, const Tensor& input,
                        const Tensor& target, double beta);
}  // namespace cuda
#endif

namespace {

enum class Reduction { none, mean, sum };

Reduction parse_reduction(const std::string& r, const char* op) {
  if (r == "mean") return Reduction::mean;
  if (r == "sum") return Reduction::sum;
  if (r == "none") return Reduction::none;
  OAR_FAIL(op, ": reduction \"", r, "\" is not one of \"mean\", \"sum\", \"none\"");
}

Tensor reduce(const Tensor& loss, Reduction r) {
  switch (r) {
    case Reduction::mean:
      return mean(loss);
    case Reduction::sum:
      return sum(loss);
    case Reduction::none:
      break;
  }
  return loss;
}

// Class-index losses see logits as [N, C, S] and targets as [N*S]; an unbatched [C] input is
// one sample.
struct ClassLayout {
  int64_t n = 1, c = 1, s = 1;
  Shape loss_shape;  // the target's shape: what reduction "none" returns
};

ClassLayout class_layout(const Tensor& x, const Tensor& target, const Tensor& weight,
                         const char* op) {
  OAR_CHECK(x.defined() && target.defined(), op, ": undefined input");
  OAR_CHECK_SAME_DEVICE(op, x, target);
  OAR_CHECK(is_floating(x.dtype()), op, ": input dtype ", dtype_name(x.dtype()),
            " not supported (floating types only)");
  OAR_CHECK(target.dtype() == DType::i64 || target.dtype() == DType::i32, op,
            ": target must hold i64 class indices, got ", dtype_name(target.dtype()));
  OAR_CHECK(x.dim() >= 1, op, ": input must be [C], [N, C] or [N, C, d1, ...], got ",
            shape_str(x.shape()));
  ClassLayout l;
  Shape expected;
  if (x.dim() == 1) {
    l.c = x.size(0);
  } else {
    l.n = x.size(0);
    l.c = x.size(1);
    expected.push_back(l.n);
    for (int64_t i = 2; i < x.dim(); ++i) {
      l.s *= x.size(i);
      expected.push_back(x.size(i));
    }
  }
  OAR_CHECK(target.shape() == expected, op, ": target shape ", shape_str(target.shape()),
            " does not match input ", shape_str(x.shape()), " (expected ", shape_str(expected),
            ")");
  if (weight.defined()) {
    OAR_CHECK(weight.dim() == 1 && weight.size(0) == l.c, op, ": weight must be [", l.c,
              "] (one per class), got ", shape_str(weight.shape()));
    OAR_CHECK(is_floating(weight.dtype()), op, ": weight must be floating, got ",
              dtype_name(weight.dtype()));
  }
  l.loss_shape = expected;
  return l;
}

Tensor f32_weight(const Tensor& w) {
  return w.defined() ? w.detach().to(DType::f32).contiguous() : w;
}

}  // namespace

Tensor cross_entropy(const Tensor& logits_arg, const Tensor& target_in, int64_t ignore_index,

                     double label_smoothing, const std::string& reduction,
                     const Tensor& weight_in) {
  Tensor logits = logits_arg;
  autocast_inputs("cross_entropy", {&logits});
  const char* op = "cross_entropy";
  const Reduction red = parse_reduction(reduction, op);
  const ClassLayout l = class_layout(logits, target_in, weight_in, op);
  OAR_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0, op, ": label_smoothing ",
            label_smoothing, " is outside [0, 1]");
  const Tensor x = logits.detach().contiguous();
  const Tensor target = target_in.to(DType::i64).contiguous();
  const Tensor weight = f32_weight(weight_in);
  double nll_scale = 1.0, smooth_scale = 1.0;
  if (red == Reduction::mean) {
    // PyTorch: the NLL part is divided by the weight of the non-ignored targets; the smoothing
    // part by that too when weighted, else by the number of positions (ignored ones included).
    const double w =
        OAR_DISPATCH_GPU(x.device(), class_target_weight, target, weight, l.c, ignore_index, op);
    nll_scale = 1.0 / w;
    smooth_scale = weight.defined() ? 1.0 / w : 1.0 / static_cast<double>(l.n * l.s);
  } else {
    OAR_DISPATCH_GPU(x.device(), class_target_weight, target, weight, l.c, ignore_index, op);
  }
  const bool total = red != Reduction::none;
  Tensor out = empty(total ? Shape{} : l.loss_shape, x.dtype(), x.device());
  Tensor lse = empty({l.n * l.s}, DType::f32, x.device());
  OAR_DISPATCH_GPU(x.device(), cross_entropy, out, lse, x, target, weight, ignore_index,
                   label_smoothing, nll_scale, smooth_scale, total);
  if (autograd::needs_grad({logits})) {
    autograd::record(op, {&out}, {logits},
                     [x, target, weight, lse, ignore_index, label_smoothing, nll_scale,
                      smooth_scale, total](const autograd::Grads& g) {
                       Tensor gx = empty(x.shape(), x.dtype(), x.device());
                       const Tensor gc = g[0].contiguous();
                       OAR_DISPATCH_GPU(x.device(), cross_entropy_backward, gx, gc, lse, x, target,
                                        weight, ignore_index, label_smoothing, nll_scale,
                                        smooth_scale, total);
                       return autograd::TensorList{gx};
                     });
  }
  return out;
}

Tensor nll_loss(const Tensor& log_probs, const Tensor& target_in, int64_t ignore_index,
                const std::string& reduction, const Tensor& weight_in) {
  const char* op = "nll_loss";
  const Reduction red = parse_reduction(reduction, op);
  const ClassLayout l = class_layout(log_probs, target_in, weight_in, op);
  const Tensor x = log_probs.detach().contiguous();
  const Tensor target = target_in.to(DType::i64).contiguous();
  const Tensor weight = f32_weight(weight_in);
  const double w =
      OAR_DISPATCH_GPU(x.device(), class_target_weight, target, weight, l.c, ignore_index, op);
  const double scale = red == Reduction::mean ? 1.0 / w : 1.0;
  const bool total = red != Reduction::none;
  Tensor out = empty(total ? Shape{} : l.loss_shape, x.dtype(), x.device());
  OAR_DISPATCH_GPU(x.device(), nll_loss, out, x, target, weight, ignore_index, scale, total);
  if (autograd::needs_grad({log_probs})) {
    autograd::record(op, {&out}, {log_probs},
                     [shape = x.shape(), dt = x.dtype(), target, weight, ignore_index, scale,
                      total](const autograd::Grads& g) {
                       const Tensor gc = g[0].contiguous();
                       Tensor gx = empty(shape, dt, gc.device());
                       OAR_DISPATCH_GPU(gc.device(), nll_loss_backward, gx, gc, target, weight,
                                        ignore_index, scale, total);
                       return autograd::TensorList{gx};
                     });
  }
  return out;
}

Tensor cross_entropy_soft(const Tensor& logits, const Tensor& target_probs,
                          const std::string& reduction) {
  const char* op = "cross_entropy_soft";
  const Reduction red = parse_reduction(reduction, op);
  OAR_CHECK(logits.defined() && target_probs.defined(), op, ": undefined input");
  OAR_CHECK(logits.dim() >= 1, op, ": logits must be [C], [N, C] or [N, C, d1, ...], got ",
            shape_str(logits.shape()));
  OAR_CHECK(logits.shape() == target_probs.shape(), op, ": target ",
            shape_str(target_probs.shape()), " must have the logits' shape ",
            shape_str(logits.shape()));
  const int64_t class_dim = logits.dim() == 1 ? 0 : 1;
  const Tensor per_position = neg(sum(target_probs * log_softmax(logits, class_dim), {class_dim}));
  return reduce(per_position, red);
}

Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& target,
                                        const std::string& reduction, const Tensor& pos_weight) {
  const char* op = "binary_cross_entropy_with_logits";
  const Reduction red = parse_reduction(reduction, op);
  OAR_CHECK(logits.defined() && target.defined(), op, ": undefined input");
  OAR_CHECK(is_floating(logits.dtype()), op, ": logits dtype ", dtype_name(logits.dtype()),
            " not supported (floating types only)");
  OAR_CHECK(logits.shape() == target.shape(), op, ": target ", shape_str(target.shape()),
            " must have the logits' shape ", shape_str(logits.shape()));
  const Tensor t = is_floating(target.dtype()) ? target : target.to(logits.dtype());
  // (1 - t) x + (1 + (pw - 1) t) log(1 + exp(-x)); softplus keeps exp from overflowing.
  const Tensor sp = softplus(neg(logits));
  Tensor loss;
  if (pos_weight.defined()) {
    broadcast_shapes(pos_weight.shape(), logits.shape(), op);
    loss = (1.0 - t) * logits + ((pos_weight - 1.0) * t + 1.0) * sp;
  } else {
    loss = (1.0 - t) * logits + sp;
  }
  return reduce(loss, red);
}

Tensor mse_loss(const Tensor& input, const Tensor& target, const std::string& reduction) {
  const char* op = "mse_loss";
  const Reduction red = parse_reduction(reduction, op);
  OAR_CHECK(input.defined() && target.defined(), op, ": undefined input");
  OAR_CHECK(input.shape() == target.shape(), op, ": target ", shape_str(target.shape()),
            " must have the input's shape ", shape_str(input.shape()));
  return reduce(square(input - target), red);
}

Tensor smooth_l1_loss(const Tensor& input, const Tensor& target_in, double beta,
                      const std::string& reduction) {
  const char* op = "smooth_l1_loss";
  const Reduction red = parse_reduction(reduction, op);
  OAR_CHECK(input.defined() && target_in.defined(), op, ": undefined input");
  OAR_CHECK(is_floating(input.dtype()), op, ": input dtype ", dtype_name(input.dtype()),
            " not supported (floating types only)");
  OAR_CHECK(input.shape() == target_in.shape(), op, ": target ", shape_str(target_in.shape()),
            " must have the input's shape ", shape_str(input.shape()));
  OAR_CHECK(beta >= 0.0, op, ": beta must be >= 0, got ", beta);
  const Tensor target = target_in.to(input.dtype());
  Tensor loss = empty(input.shape(), input.dtype(), input.device());
  OAR_DISPATCH_GPU(input.device(), smooth_l1, loss, input, target, beta);
  if (autograd::needs_grad({input, target})) {
    autograd::record(op, {&loss}, {input, target},
                     [i = input.detach(), t = target.detach(), beta](const autograd::Grads& g) {
                       Tensor gi = empty(i.shape(), i.dtype(), i.device());
                       OAR_DISPATCH_GPU(i.device(), smooth_l1_backward, gi, g[0], i, t,
                                        beta);
                       return autograd::TensorList{gi, g.needs(1) ? neg(gi) : Tensor()};
                     });
  }
  return reduce(loss, red);
}

}  // namespace oar
