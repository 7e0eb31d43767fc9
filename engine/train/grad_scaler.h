#pragma once
// Dynamic loss scaling for fp16 training (torch.cuda.amp.GradScaler's semantics). fp16 has a
// narrow range, so small gradients underflow to zero: the loss is multiplied by `scale` before
// backward, and gradients are divided by it (unscale_) before clipping and the optimizer step.
// A step whose gradients hold an inf or NaN is skipped and the scale halves; after
// `growth_interval` good steps in a row it doubles. Parameters (master weights) stay f32: autocast
// lowers only the ops' inputs, so the gradients reaching them are f32.
#include <cstdint>
#include <vector>

#include "engine/io/json.h"
#include "engine/tensor/tensor.h"

namespace oar {
namespace optim {
class Optimizer;
}

struct GradScalerOptions {
  double init_scale = 65536.0;  // 2^16, as PyTorch
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;  // good steps in a row before the scale grows
};

class GradScaler {
 public:
  explicit GradScaler(GradScalerOptions o = {});

  double scale() const { return scale_; }
  int64_t growth_tracker() const { return good_steps_; }
  int64_t skipped_steps() const { return skipped_; }

  // loss * scale (differentiable).
  Tensor scale_loss(const Tensor& loss) const;
  // Divides each defined gradient by the scale in place and reports whether all of them are
  // finite (one device-to-host read for all). Call once per optimizer step, before clipping.
  bool unscale_(const std::vector<Tensor>& params);
  // unscale_ (unless done for this step), then the optimizer step when the gradients are finite,
  // then update(). Returns whether the optimizer stepped.
  bool step(optim::Optimizer& opt, const std::vector<Tensor>& params);
  // Ends the step: on inf/NaN the scale shrinks by backoff_factor and the growth count restarts;
  // otherwise the count grows and, at growth_interval, the scale grows by growth_factor.
  void update();

  // {"scale", "growth_tracker", "skipped_steps"} for state.json; load_state restores them.
  Json state() const;
  void load_state(const Json& j, const std::string& where);

 private:
  GradScalerOptions o_;
  double scale_;
  int64_t good_steps_ = 0;
  int64_t skipped_ = 0;
  bool unscaled_ = false;
  bool found_inf_ = false;
};

}  // namespace oar
