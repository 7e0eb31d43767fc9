#include "engine/optim/schedule.h"

#include <algorithm>
#include <cmath>

#include "engine/core/error.h"

namespace oar::optim {

PiecewiseLr::PiecewiseLr(std::vector<int64_t> boundaries, std::vector<double> values)
    : boundaries_(std::move(boundaries)), values_(std::move(values)) {
  OAR_CHECK(values_.size() == boundaries_.size() + 1, "PiecewiseLr: ", boundaries_.size(),
            " boundaries need ", boundaries_.size() + 1, " values, got ", values_.size());
  OAR_CHECK(std::is_sorted(boundaries_.begin(), boundaries_.end()),
            "PiecewiseLr: boundaries must be increasing");
}

double PiecewiseLr::lr(int64_t step) const {
  const auto it = std::upper_bound(boundaries_.begin(), boundaries_.end(), step);
  return values_[static_cast<size_t>(it - boundaries_.begin())];
}

StepLr::StepLr(double base, int64_t step_size, double gamma)
    : base_(base), gamma_(gamma), step_size_(step_size) {
  OAR_CHECK(step_size > 0, "StepLr: step_size must be > 0, got ", step_size);
}

double StepLr::lr(int64_t step) const {
  return base_ * std::pow(gamma_, static_cast<double>(step / step_size_));
}

double ExponentialLr::lr(int64_t step) const {
  return base_ * std::pow(gamma_, static_cast<double>(step));
}

CosineLr::CosineLr(double base, int64_t t_max, double eta_min)
    : base_(base), eta_min_(eta_min), t_max_(t_max) {
  OAR_CHECK(t_max > 0, "CosineLr: T_max must be > 0, got ", t_max);
}

CosineLr CosineLr::with_restarts(double base, int64_t t_0, int64_t t_mult, double eta_min) {
  OAR_CHECK(t_mult >= 1, "CosineLr: T_mult must be >= 1, got ", t_mult);
  CosineLr c(base, t_0, eta_min);
  c.restarts_ = true;
  c.t_mult_ = t_mult;
  return c;
}

double CosineLr::lr(int64_t step) const {
  double t_cur = static_cast<double>(step);
  double t_i = static_cast<double>(t_max_);
  if (restarts_) {
    if (t_mult_ == 1) {
      t_cur = static_cast<double>(step % t_max_);
    } else {
      // Integer walk over the periods (exact, unlike the log formula at period boundaries).
      int64_t start = 0, period = t_max_;
      while (step >= start + period) {
        start += period;
        period *= t_mult_;
      }
      t_cur = static_cast<double>(step - start);
      t_i = static_cast<double>(period);
    }
  }
  return eta_min_ + (base_ - eta_min_) * (1.0 + std::cos(M_PI * t_cur / t_i)) / 2.0;
}

WarmupLr::WarmupLr(double peak, int64_t warmup, int64_t total, DecayKind decay, double end_lr,
                   double power)
    : peak_(peak), end_(end_lr), power_(power), warmup_(warmup), total_(total), decay_(decay) {
  OAR_CHECK(warmup >= 0 && (decay == DecayKind::constant || total > warmup),
            "WarmupLr: need 0 <= warmup_steps < total_steps, got warmup=", warmup,
            " total=", total);
}

double WarmupLr::lr(int64_t step) const {
  if (step < warmup_)
    return peak_ * static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup_));
  if (decay_ == DecayKind::constant) return peak_;
  const double progress =
      std::min(1.0, static_cast<double>(step - warmup_) / static_cast<double>(total_ - warmup_));
  switch (decay_) {
    case DecayKind::linear:
      return end_ + (peak_ - end_) * (1.0 - progress);
    case DecayKind::cosine:
      return end_ + (peak_ - end_) * (1.0 + std::cos(M_PI * progress)) / 2.0;
    case DecayKind::polynomial:
      return end_ + (peak_ - end_) * std::pow(1.0 - progress, power_);
    case DecayKind::constant:
      break;
  }
  return peak_;
}

}  // namespace oar::optim
