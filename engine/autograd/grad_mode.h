#pragma once
// Whether ops record autograd history on this thread.

namespace oar {

bool grad_enabled();
void set_grad_enabled(bool on);

// Turns recording off for a scope (evaluation, prediction, optimizer steps).
class NoGradGuard {
 public:
  NoGradGuard() : prev_(grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

}  // namespace oar
