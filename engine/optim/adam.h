#pragma once
// Adam (L2 decay added to the gradient) and AdamW (decoupled decay p *= 1 - lr wd), as
// torch.optim.Adam / AdamW:
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  (amsgrad: vmax = max(vmax, v))
//   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
#include "engine/optim/optimizer.h"

namespace oar::optim {

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool amsgrad = false;
};

// AdamW's default weight decay is 1e-2 (PyTorch).
struct AdamWOptions : AdamOptions {
  AdamWOptions() { weight_decay = 1e-2; }
};

class Adam : public Optimizer {
 public:
  Adam(std::vector<ParamGroup> groups, const AdamOptions& opt = {});
  Adam(std::vector<Tensor> params, const AdamOptions& opt = {});
  void step() override;
  std::string name() const override { return decoupled_ ? "AdamW" : "Adam"; }

  AdamOptions options;

 protected:
  Adam(std::vector<ParamGroup> groups, const AdamOptions& opt, bool decoupled);

 private:
  bool decoupled_ = false;
};

class AdamW : public Adam {
 public:
  AdamW(std::vector<ParamGroup> groups, const AdamWOptions& opt = {})
      : Adam(std::move(groups), opt, true) {}
  AdamW(std::vector<Tensor> params, const AdamWOptions& opt = {})
      : Adam(std::vector<ParamGroup>{ParamGroup{std::move(params), {}, -1, -1}}, opt, true) {}
};

}  // namespace oar::optim
