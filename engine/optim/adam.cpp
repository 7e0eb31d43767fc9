#include "engine/optim/adam.h"

#include <cmath>

#include "engine/autograd/grad_mode.h"
#include "engine/core/error.h"
#include "engine/ops/binary.h"
#include "engine/ops/unary.h"

namespace oar {
namespace cpu {
// engine/ops/cpu/adam.cpp: the whole update in one pass over contiguous f32 arrays.
void adam_step(float* p, const float* g, float* m, float* v, float* vmax, int64_t n, double lr,
               double beta1, double beta2, double eps, double weight_decay, bool decoupled,
               double bc1, double bc2);
}  // namespace cpu

namespace optim {

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
      const double bc1 = 1.0 - std::pow(b1, static_cast<double>(t));
      const double bc2 = 1.0 - std::pow(b2, static_cast<double>(t));
      Tensor& m = st.get("exp_avg", p);
      Tensor& v = st.get("exp_avg_sq", p);
      Tensor* vmax = options.amsgrad ? &st.get("max_exp_avg_sq", p) : nullptr;
      if (fused_cpu_update_ok(p, {&grad, &m, &v, vmax})) {
        cpu::adam_step(p.data<float>(), grad.data<float>(), m.data<float>(), v.data<float>(),
                       vmax ? vmax->data<float>() : nullptr, p.numel(), g.lr, b1, b2, options.eps,
                       g.weight_decay, decoupled_, bc1, bc2);
        ++p.impl()->storage->version;
        continue;
      }
      if (g.weight_decay != 0) {
        if (decoupled_)
          mul_(p, 1.0 - g.lr * g.weight_decay);
        else
          grad = add(grad, mul(p, g.weight_decay));
      }
      mul_(m, b1);
      add_(m, grad, 1.0 - b1);
      mul_(v, b2);
      add_(v, mul(grad, grad), 1.0 - b2);
      Tensor second = v;
      if (vmax) {
        vmax->copy_(maximum(*vmax, v));
        second = *vmax;
      }
      const Tensor denom = add(div(sqrt(second), std::sqrt(bc2)), options.eps);
      add_(p, div(m, denom), -g.lr / bc1);
    }
  }
}

}  // namespace optim
}  // namespace oar
