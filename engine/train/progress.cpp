#include "engine/train/progress.h"

#include <unistd.h>

#include <cstdio>

namespace oar {

Progress::Progress(std::string label, int64_t total, int64_t every, bool force_plain)
    : label_(std::move(label)),
      total_(total),
      every_(every < 1 ? 1 : every),
      tty_(!force_plain && isatty(STDERR_FILENO)),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

std::string Progress::format_duration(double s) {
  if (s < 0) s = 0;
  const int64_t t = static_cast<int64_t>(s + 0.5);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", static_cast<long>(t / 3600),
                  static_cast<long>(t / 60 % 60), static_cast<long>(t % 60));
  else
    std::snprintf(buf, sizeof buf, "%02ld:%02ld", static_cast<long>(t / 60),
                  static_cast<long>(t % 60));
  return buf;
}

void Progress::update(int64_t done, int64_t samples, const std::string& status) {
  const auto now = std::chrono::steady_clock::now();
  const double el = std::chrono::duration<double>(now - start_).count();
  const double rate = el > 0 ? samples / el : 0.0;
  const double eta = (total_ > 0 && done > 0) ? el * (total_ - done) / done : 0.0;
  char line[512];
  if (tty_) {
    if (std::chrono::duration<double>(now - last_draw_).count() < 0.1 && done != total_) return;
    last_draw_ = now;
    const int width = 24;
    const int fill = total_ > 0 ? static_cast<int>(width * done / total_) : 0;
    std::string bar(static_cast<size_t>(fill), '#');
    bar.resize(width, '.');
    std::snprintf(line, sizeof line, "\r%s [%s] %ld/%ld  %s  %.1f samples/s  ETA %s\x1b[K",
                  label_.c_str(), bar.c_str(), static_cast<long>(done), static_cast<long>(total_),
                  status.c_str(), rate, format_duration(eta).c_str());
    std::fputs(line, stderr);
    std::fflush(stderr);
  } else if (done / every_ != last_plain_ / every_ || last_plain_ < 0) {
    if (done % every_ != 0 && done != total_) return;
    last_plain_ = done;
    std::snprintf(line, sizeof line, "%s step %ld/%ld  %s  %.1f samples/s  ETA %s\n",
                  label_.c_str(), static_cast<long>(done), static_cast<long>(total_),
                  status.c_str(), rate, format_duration(eta).c_str());
    std::fputs(line, stderr);
  }
}

void Progress::finish(const std::string& status) {
  const double el =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  if (tty_) std::fputs("\r\x1b[K", stderr);
  std::fprintf(stderr, "%s done in %s  %s\n", label_.c_str(), format_duration(el).c_str(),
               status.c_str());
}

}  // namespace oar
