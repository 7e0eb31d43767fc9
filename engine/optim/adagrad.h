#pragma once
// Adagrad as torch.optim.Adagrad:
//   g += wd p;  clr = lr / (1 + (t - 1) lr_decay);  s += g^2;  p -= clr g / (sqrt(s) + eps)
#include "engine/optim/optimizer.h"

namespace oar::optim {

struct AdagradOptions {
  double lr = 1e-2;
  double lr_decay = 0.0;
  double weight_decay = 0.0;
  double initial_accumulator_value = 0.0;
  double eps = 1e-10;
};

class Adagrad : public Optimizer {
 public:
  Adagrad(std::vector<ParamGroup> groups, const AdagradOptions& opt = {});
  Adagrad(std::vector<Tensor> params, const AdagradOptions& opt = {});
  void step() override;
  std::string name() const override { return "Adagrad"; }

  AdagradOptions options;
};

}  // namespace oar::optim
