#pragma once
// RMSProp as torch.optim.RMSprop:
//   g += wd p;  s = alpha s + (1 - alpha) g^2;  centered: a = alpha a + (1 - alpha) g,
//   avg = sqrt(s - a^2) + eps, else sqrt(s) + eps;
//   momentum > 0: b = momentum b + g / avg, p -= lr b;  else p -= lr g / avg
#include "engine/optim/optimizer.h"

namespace oar::optim {

struct RmsPropOptions {
  double lr = 1e-2;
  double alpha = 0.99;
  double eps = 1e-8;
  double weight_decay = 0.0;
  double momentum = 0.0;
  bool centered = false;
};

class RMSProp : public Optimizer {
 public:
  RMSProp(std::vector<ParamGroup> groups, const RmsPropOptions& opt = {});
  RMSProp(std::vector<Tensor> params, const RmsPropOptions& opt = {});
  void step() override;
  std::string name() const override { return "RMSProp"; }

  RmsPropOptions options;
};

}  // namespace oar::optim
