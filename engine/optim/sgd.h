#pragma once
// SGD with momentum, dampening, Nesterov and L2 weight decay, as torch.optim.SGD:
//   d = g + wd p;  b = d (first step) or momentum b + (1 - dampening) d;
//   d = nesterov ? d + momentum b : b;  p -= lr d
#include "engine/optim/optimizer.h"

namespace oar::optim {

struct SgdOptions {
  double lr = 1e-3;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
};

class SGD : public Optimizer {
 public:
  SGD(std::vector<ParamGroup> groups, const SgdOptions& opt = {});
  SGD(std::vector<Tensor> params, const SgdOptions& opt = {});
  void step() override;
  std::string name() const override { return "SGD"; }

  SgdOptions options;
};

}  // namespace oar::optim
