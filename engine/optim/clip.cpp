#include "engine/optim/clip.h"

#include <cmath>

#include "engine/autograd/grad_mode.h"
#include "engine/core/error.h"
#include "engine/nn/module.h"
#include "engine/ops/binary.h"
#include "engine/ops/reduce.h"
#include "engine/ops/unary.h"

namespace oar::optim {

double clip_norm_(const std::vector<Tensor>& grads, double max_norm) {
  OAR_CHECK(max_norm > 0, "clip_grad_norm: max_norm must be > 0, got ", max_norm);
  NoGradGuard no_grad;
  // Squares summed on the gradients' device and read once (one device sync per step on CUDA).
  Tensor acc;
  for (const Tensor& g : grads) {
    if (!g.defined()) continue;
    const Tensor gf = g.dtype() == DType::f32 ? g : g.to(DType::f32);
    Tensor s = sum(mul(gf, gf));
    if (acc.defined() && s.device() != acc.device()) s = s.to(acc.device());
    acc = acc.defined() ? add(acc, s) : s;
  }
  const double norm = acc.defined() ? std::sqrt(acc.item_double()) : 0.0;
  const double coef = max_norm / (norm + 1e-6);
  if (coef < 1.0)
    for (const Tensor& g : grads) {
      if (!g.defined()) continue;
      Tensor m = g;
      mul_(m, coef);
    }
  return norm;
}

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  std::vector<Tensor> grads;
  for (const Tensor& p : params) grads.push_back(p.grad());
  return clip_norm_(grads, max_norm);
}

double clip_grad_norm(const nn::Module& module, double max_norm) {
  if (module.is_flat()) return clip_norm_(module.flat_gradients(), max_norm);
  return clip_grad_norm(module.parameters(), max_norm);
}

}  // namespace oar::optim
