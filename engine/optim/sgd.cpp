#include "engine/optim/sgd.h"

#include "engine/autograd/grad_mode.h"
#include "engine/core/error.h"
#include "engine/ops/binary.h"

namespace oar {
namespace cpu {
// engine/ops/cpu/sgd.cpp: the whole update in one pass over contiguous f32 arrays.
void sgd_step(float* p, const float* g, float* buf, bool first, int64_t n, double lr,
              double momentum, double dampening, double weight_decay, bool nesterov);
}  // namespace cpu

namespace optim {

SGD::SGD(std::vector<ParamGroup> groups, const SgdOptions& opt)
    : Optimizer(std::move(groups), opt.lr, opt.weight_decay, "SGD"), options(opt) {
  OAR_CHECK(opt.momentum >= 0, "SGD: momentum must be >= 0, got ", opt.momentum);
  OAR_CHECK(!opt.nesterov || (opt.momentum > 0 && opt.dampening == 0),
            "SGD: nesterov needs momentum > 0 and dampening 0");
}

SGD::SGD(std::vector<Tensor> params, const SgdOptions& opt)
    : SGD(std::vector<ParamGroup>{ParamGroup{std::move(params), {}, -1, -1}}, opt) {}

void SGD::step() {
  NoGradGuard no_grad;
  for (auto& g : groups()) {
    for (Tensor& p : g.params) {
      const Tensor grad = p.grad();
      if (!grad.defined()) continue;
      ParamState& st = state_of(p);
      Tensor* buf = options.momentum != 0 ? st.find("momentum_buffer") : nullptr;
      if (fused_cpu_update_ok(p, {&grad, buf})) {
        const bool first = options.momentum != 0 && !buf;
        if (first) {
          st.buffers.emplace_back("momentum_buffer", empty_like(p));
          buf = &st.buffers.back().second;
        }
        cpu::sgd_step(p.data<float>(), grad.data<float>(), buf ? buf->data<float>() : nullptr,
                      first, p.numel(), g.lr, options.momentum, options.dampening, g.weight_decay,
                      options.nesterov);
        ++p.impl()->storage->version;
        if (buf) ++buf->impl()->storage->version;
        ++st.step;
        continue;
      }
      Tensor d = grad;
      if (g.weight_decay != 0) d = add(d, mul(p, g.weight_decay));
      if (options.momentum != 0) {
        if (!buf) {
          st.buffers.emplace_back("momentum_buffer", d.clone());
          buf = &st.buffers.back().second;
        } else {
          mul_(*buf, options.momentum);
          add_(*buf, d, 1.0 - options.dampening);
        }
        d = options.nesterov ? add(d, mul(*buf, options.momentum)) : *buf;
      }
      add_(p, d, -g.lr);
      ++st.step;
    }
  }
}

}  // namespace optim
}  // namespace oar
