#pragma once
// Global-norm gradient clipping (torch.nn.utils.clip_grad_norm_).
#include <vector>

#include "engine/tensor/tensor.h"

namespace oar::nn {
class Module;
}

namespace oar::optim {

// Total L2 norm of the parameters' gradients (those defined); when it exceeds max_norm every
// gradient is scaled in place by max_norm / (norm + 1e-6). Returns the norm before clipping.
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);
// The same over gradient tensors themselves (e.g. nn::Module::flat_gradients()).
double clip_norm_(const std::vector<Tensor>& grads, double max_norm);
// A module's gradients: one reduction and one scale per flat buffer once flattened.
double clip_grad_norm(const nn::Module& module, double max_norm);

}  // namespace oar::optim
