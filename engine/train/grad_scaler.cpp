#include "engine/train/grad_scaler.h"

#include <cmath>
#include <string>

#include "engine/autograd/grad_mode.h"
#include "engine/core/error.h"
#include "engine/ops/binary.h"
#include "engine/ops/reduce.h"
#include "engine/optim/optimizer.h"

namespace oar {

GradScaler::GradScaler(GradScalerOptions o) : o_(o), scale_(o.init_scale) {
  OAR_CHECK(o_.init_scale > 0 && std::isfinite(o_.init_scale),
            "loss scaling: init scale must be a positive finite number, got ", o_.init_scale);
  OAR_CHECK(o_.growth_factor > 1, "loss scaling: growth factor must be > 1, got ",
            o_.growth_factor);
  OAR_CHECK(o_.backoff_factor > 0 && o_.backoff_factor < 1,
            "loss scaling: backoff factor must be in (0, 1), got ", o_.backoff_factor);
  OAR_CHECK(o_.growth_interval >= 1, "loss scaling: growth interval must be at least 1, got ",
            o_.growth_interval);
}

Tensor GradScaler::scale_loss(const Tensor& loss) const {
  return mul(loss, scale_);
}

bool GradScaler::unscale_(const std::vector<Tensor>& params) {
  OAR_CHECK(!unscaled_, "GradScaler::unscale_ called twice for one step (call update() between)");
  NoGradGuard no_grad;
  const double inv = 1.0 / scale_;
  // 0 * x is 0 for finite x and NaN for inf or NaN: one sum per gradient, one read for all.
  Tensor bad;
  std::vector<Tensor> seen;
  for (const Tensor& p : params) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    mul_(g, inv);
    Tensor s = sum(mul(g.dtype() == DType::f32 ? g : g.to(DType::f32), 0.0));
    if (bad.defined() && s.device() != bad.device()) s = s.to(bad.device());
    bad = bad.defined() ? add(bad, s) : s;
  }
  found_inf_ = bad.defined() && !std::isfinite(bad.item_double());
  unscaled_ = true;
  return !found_inf_;
}

bool GradScaler::step(optim::Optimizer& opt, const std::vector<Tensor>& params) {
  if (!unscaled_) unscale_(params);
  const bool ok = !found_inf_;
  if (ok) opt.step();
  update();
  return ok;
}

void GradScaler::update() {
  OAR_CHECK(unscaled_, "GradScaler::update called before unscale_ for this step");
  if (found_inf_) {
    scale_ *= o_.backoff_factor;
    good_steps_ = 0;
    ++skipped_;
  } else if (++good_steps_ >= o_.growth_interval) {
    const double grown = scale_ * o_.growth_factor;
    if (std::isfinite(grown)) scale_ = grown;
    good_steps_ = 0;
  }
  unscaled_ = false;
  found_inf_ = false;
}

Json GradScaler::state() const {
  Json j = Json::object();
  j["scale"] = scale_;
  j["growth_tracker"] = good_steps_;
  j["skipped_steps"] = skipped_;
  return j;
}

void GradScaler::load_state(const Json& j, const std::string& where) {
  const double s = j.at("scale").as_double();
  OAR_CHECK(s > 0 && std::isfinite(s), where,
            ": loss_scale.scale must be a positive finite number, got ", s);
  const int64_t g = j.at("growth_tracker").as_int();
  OAR_CHECK(g >= 0, where, ": loss_scale.growth_tracker must be >= 0, got ", g);
  scale_ = s;
  good_steps_ = g;
  skipped_ = j.find("skipped_steps") ? j.at("skipped_steps").as_int() : 0;
  unscaled_ = false;
  found_inf_ = false;
}

}  // namespace oar
