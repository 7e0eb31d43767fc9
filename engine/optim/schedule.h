#pragma once
// Learning-rate schedules as pure functions of the optimizer step (0-based), so resuming at step N
// needs no schedule state. The trainer calls optimizer.set_lr(schedule.lr(step)) before each step.
#include <cstdint>
#include <memory>
#include <vector>

namespace oar::optim {

class LrSchedule {
 public:
  virtual ~LrSchedule() = default;
  virtual double lr(int64_t step) const = 0;
};

// values[i] while step < boundaries[i]; values.back() from the last boundary on
// (boundaries increasing, values.size() == boundaries.size() + 1).
class PiecewiseLr : public LrSchedule {
 public:
  PiecewiseLr(std::vector<int64_t> boundaries, std::vector<double> values);
  double lr(int64_t step) const override;

 private:
  std::vector<int64_t> boundaries_;
  std::vector<double> values_;
};

// base * gamma^(step / step_size) (integer division), as torch StepLR.
class StepLr : public LrSchedule {
 public:
  StepLr(double base, int64_t step_size, double gamma = 0.1);
  double lr(int64_t step) const override;

 private:
  double base_, gamma_;
  int64_t step_size_;
};

// base * gamma^step.
class ExponentialLr : public LrSchedule {
 public:
  ExponentialLr(double base, double gamma) : base_(base), gamma_(gamma) {}
  double lr(int64_t step) const override;

 private:
  double base_, gamma_;
};

// eta_min + (base - eta_min) (1 + cos(pi T_cur / T_i)) / 2. Without restarts T_cur = step,
// T_i = t_max (the closed form of torch CosineAnnealingLR, periodic past t_max). With restarts
// (SGDR, torch CosineAnnealingWarmRestarts): periods t_0, t_0 t_mult, t_0 t_mult^2, ...
class CosineLr : public LrSchedule {
 public:
  CosineLr(double base, int64_t t_max, double eta_min = 0.0);
  static CosineLr with_restarts(double base, int64_t t_0, int64_t t_mult = 1, double eta_min = 0.0);
  double lr(int64_t step) const override;

 private:
  double base_, eta_min_;
  int64_t t_max_;
  bool restarts_ = false;
  int64_t t_mult_ = 1;
};

enum class DecayKind { constant, linear, cosine, polynomial };

// Linear warmup from 0 to peak over warmup_steps (lr = peak * step / warmup_steps), then decay
// from peak to end_lr at total_steps (end_lr after it):
//   constant: peak;  linear: polynomial with power 1;
//   cosine: end + (peak - end) (1 + cos(pi progress)) / 2;
//   polynomial: end + (peak - end) (1 - progress)^power,
// with progress = (step - warmup) / (total - warmup). Matches Hugging Face's
// get_{constant,linear,cosine,polynomial_decay}_schedule_with_warmup (end_lr 0 for linear/cosine).
class WarmupLr : public LrSchedule {
 public:
  WarmupLr(double peak, int64_t warmup_steps, int64_t total_steps,
           DecayKind decay = DecayKind::linear, double end_lr = 0.0, double power = 1.0);
  double lr(int64_t step) const override;

 private:
  double peak_, end_, power_;
  int64_t warmup_, total_;
  DecayKind decay_;
};

}  // namespace oar::optim
