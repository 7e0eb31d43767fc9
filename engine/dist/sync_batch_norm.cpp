#include "engine/dist/sync_batch_norm.h"

#include "engine/autograd/grad_mode.h"
#include "engine/autograd/node.h"
#include "engine/nn/batch_norm.h"

namespace oar::dist {

Tensor cross_rank_sum(ProcessGroup& group, const Tensor& x) {
  Tensor out;
  {
    NoGradGuard no_grad;
    out = x.contiguous().clone();
    group.allreduce(out, ReduceOp::sum);
  }
  if (autograd::needs_grad({x})) {
    autograd::record("cross_rank_sum", {&out}, {x}, [&group](const autograd::Grads& g) {
      Tensor gy = g.grad_or_zeros(0).contiguous().clone();
      group.allreduce(gy, ReduceOp::sum);
      return autograd::TensorList{gy};
    });
  }
  return out;
}

void enable_sync_batch_norm(ProcessGroup& group) {
  nn::set_batch_norm_cross_rank_sum([&group](const Tensor& x) { return cross_rank_sum(group, x); });
}

void disable_sync_batch_norm() {
  nn::set_batch_norm_cross_rank_sum({});
}

}  // namespace oar::dist
