#include "engine/optim/adagrad.h"

#include "engine/autograd/grad_mode.h"
#include "engine/core/error.h"
#include "engine/ops/binary.h"
#include "engine/ops/unary.h"

namespace oar::optim {

Adagrad::Adagrad(std::vector<ParamGroup> groups, const AdagradOptions& opt)
    : Optimizer(std::move(groups), opt.lr, opt.weight_decay, "Adagrad"), options(opt) {
  OAR_CHECK(opt.lr_decay >= 0 && opt.initial_accumulator_value >= 0 && opt.eps >= 0,
            "Adagrad: lr_decay, initial_accumulator_value and eps must be >= 0");
}

Adagrad::Adagrad(std::vector<Tensor> params, const AdagradOptions& opt)
    : Adagrad(std::vector<ParamGroup>{ParamGroup{std::move(params), {}, -1, -1}}, opt) {}

void Adagrad::step() {
  NoGradGuard no_grad;
  for (auto& g : groups()) {
    for (Tensor& p : g.params) {
      Tensor grad = p.grad();
      if (!grad.defined()) continue;
      ParamState& st = state_of(p);
      const int64_t t = ++st.step;
      if (g.weight_decay != 0) grad = add(grad, mul(p, g.weight_decay));
      const double clr = g.lr / (1.0 + static_cast<double>(t - 1) * options.lr_decay);
      Tensor& s = st.get("sum", p, options.initial_accumulator_value);
      add_(s, mul(grad, grad));
      add_(p, div(grad, add(sqrt(s), options.eps)), -clr);
    }
  }
}

}  // namespace oar::optim
