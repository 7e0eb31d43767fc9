#include "engine/optim/rmsprop.h"

#include "engine/autograd/grad_mode.h"
#include "engine/core/error.h"
#include "engine/ops/binary.h"
#include "engine/ops/unary.h"

namespace oar::optim {

RMSProp::RMSProp(std::vector<ParamGroup> groups, const RmsPropOptions& opt)
    : Optimizer(std::move(groups), opt.lr, opt.weight_decay, "RMSProp"), options(opt) {
  OAR_CHECK(opt.alpha >= 0 && opt.eps >= 0 && opt.momentum >= 0,
            "RMSProp: alpha, eps and momentum must be >= 0");
}

RMSProp::RMSProp(std::vector<Tensor> params, const RmsPropOptions& opt)
    : RMSProp(std::vector<ParamGroup>{ParamGroup{std::move(params), {}, -1, -1}}, opt) {}

void RMSProp::step() {
  NoGradGuard no_grad;
  const double alpha = options.alpha;
  for (auto& g : groups()) {
    for (Tensor& p : g.params) {
      Tensor grad = p.grad();
      if (!grad.defined()) continue;
      ParamState& st = state_of(p);
      ++st.step;
      if (g.weight_decay != 0) grad = add(grad, mul(p, g.weight_decay));
      Tensor& s = st.get("square_avg", p);
      mul_(s, alpha);
      add_(s, mul(grad, grad), 1.0 - alpha);
      Tensor avg;
      if (options.centered) {
        Tensor& a = st.get("grad_avg", p);
        mul_(a, alpha);
        add_(a, grad, 1.0 - alpha);
        avg = add(sqrt(sub(s, mul(a, a))), options.eps);
      } else {
        avg = add(sqrt(s), options.eps);
      }
      if (options.momentum > 0) {
        Tensor& b = st.get("momentum_buffer", p);
        mul_(b, options.momentum);
        add_(b, div(grad, avg));
        add_(p, b, -g.lr);
      } else {
        add_(p, div(grad, avg), -g.lr);
      }
    }
  }
}

}  // namespace oar::optim
