#pragma once
// Writes TensorBoard scalar event files (TFRecord framing of Event protobufs, written by hand),
// so `tensorboard --logdir RUN_DIR` shows the curves with no Python in oar.
#include <cstdint>
#include <cstdio>
#include <string>

namespace oar {

uint32_t crc32c(const void* data, size_t n);

class EventWriter {
 public:
  // Creates DIR/events.out.tfevents.<unix time>.oar; throws naming the path when it cannot.
  explicit EventWriter(const std::string& dir);
  ~EventWriter();
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  void scalar(const std::string& tag, double value, int64_t step);
  void flush();
  const std::string& path() const { return path_; }

 private:
  void record(const std::string& bytes);
  std::string path_;
  std::FILE* f_ = nullptr;
};

}  // namespace oar
