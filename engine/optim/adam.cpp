#include "engine/optim/adam.h"

#include <cmath>

#include "engine/autograd/grad_mode.h"
#include "engine/core/error.h"
#include "engine/ops/binary.h"
#include "engine/ops/unary.h"

namespace oar::optim {

Adam::Adam(std::vector<ParamGroup> groups, const AdamOptions& opt, bool decoupled)
    : Optimizer(std::move(groups), opt.lr, opt.weight_decay, decoupled ? "AdamW" : "Adam"),
      options(opt),
      decoupled_(decoupled) {
  OAR_CHECK(opt.beta1 >= 0 && opt.beta1 < 1 && opt.beta2 >= 0 && opt.beta2 < 1, name(),
            ": betas must be in [0, 1), got ", opt.beta1, ", ", opt.beta2);
  OAR_CHECK(opt.eps >= 0, name(), ": eps must be >= 0");
}

Adam::Adam(std::vector<ParamGroup> groups, const AdamOptions& opt)
    : Adam(std::move(groups), opt, false) {}

Adam::Adam(std::vector<Tensor> params, const AdamOptions& opt)
    : Adam(std::vector<ParamGroup>{ParamGroup{std::move(params), {}, -1, -1}}, opt, false) {}

void Adam::step() {
  NoGradGuard no_grad;
  const double b1 = options.beta1, b2 = options.beta2;
  for (auto& g : groups()) {
    for (Tensor& p : g.params) {
      Tensor grad = p.grad();
      if (!grad.defined()) continue;
      ParamState& st = state_of(p);
      const int64_t t = ++st.step;
      if (g.weight_decay != 0) {
        if (decoupled_)
          mul_(p, 1.0 - g.lr * g.weight_decay);
        else
          grad = add(grad, mul(p, g.weight_decay));
      }
      Tensor& m = st.get("exp_avg", p);
      Tensor& v = st.get("exp_avg_sq", p);
      mul_(m, b1);
      add_(m, grad, 1.0 - b1);
      mul_(v, b2);
      add_(v, mul(grad, grad), 1.0 - b2);
      const double bc1 = 1.0 - std::pow(b1, static_cast<double>(t));
      const double bc2 = 1.0 - std::pow(b2, static_cast<double>(t));
      Tensor second = v;
      if (options.amsgrad) {
        Tensor& vmax = st.get("max_exp_avg_sq", p);
        vmax.copy_(maximum(vmax, v));
        second = vmax;
      }
      const Tensor denom = add(div(sqrt(second), std::sqrt(bc2)), options.eps);
      add_(p, div(m, denom), -g.lr / bc1);
    }
  }
}

}  // namespace oar::optim
