#pragma once
// Training progress: a one-line bar redrawn in place on a terminal, plain periodic lines
// otherwise (logs, CI).
#include <chrono>
#include <cstdint>
#include <string>

namespace oar {

class Progress {
 public:
  // total = steps in this phase (0 if unknown); every = steps between plain lines.
  Progress(std::string label, int64_t total, int64_t every, bool force_plain = false);
  // Reports completed steps and samples so far and a short status ("loss 0.412").
  void update(int64_t done, int64_t samples, const std::string& status);
  void finish(const std::string& status);
  static std::string format_duration(double seconds);

 private:
  std::string label_;
  int64_t total_, every_;
  bool tty_;
  int64_t last_plain_ = -1;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace oar
