#include "engine/train/event_writer.h"

#include <chrono>
#include <cstring>
#include <filesystem>

#include "engine/core/error.h"

namespace oar {

uint32_t crc32c(const void* data, size_t n) {
  static uint32_t table[256];
  static bool init = [] {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
      table[i] = c;
    }
    return true;
  }();
  (void)init;
  uint32_t crc = 0xffffffffu;
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return crc ^ 0xffffffffu;
}

namespace {
uint32_t masked_crc(const void* data, size_t n) {
  const uint32_t c = crc32c(data, n);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

void varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}
void tag(std::string& out, int field, int wire) {
  varint(out, (static_cast<uint64_t>(field) << 3) | wire);
}
void fixed64(std::string& out, double d) {
  char b[8];
  std::memcpy(b, &d, 8);
  out.append(b, 8);
}
void fixed32(std::string& out, float f) {
  char b[4];
  std::memcpy(b, &f, 4);
  out.append(b, 4);
}
void bytes_field(std::string& out, int field, const std::string& s) {
  tag(out, field, 2);
  varint(out, s.size());
  out += s;
}
double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}
}  // namespace

EventWriter::EventWriter(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const auto secs = static_cast<int64_t>(now_seconds());
  path_ = (std::filesystem::path(dir) / ("events.out.tfevents." + std::to_string(secs) + ".oar"))
              .string();
  f_ = std::fopen(path_.c_str(), "ab");
  OAR_CHECK(f_ != nullptr, "cannot create TensorBoard event file ", path_, ": ",
            std::strerror(errno));
  std::string ev;  // Event{wall_time=1, file_version=3}
  tag(ev, 1, 1);
  fixed64(ev, now_seconds());
  bytes_field(ev, 3, "brain.Event:2");
  record(ev);
  flush();
}

EventWriter::~EventWriter() {
  if (f_) std::fclose(f_);
}

void EventWriter::record(const std::string& data) {
  std::string rec;
  const uint64_t len = data.size();
  char lb[8];
  std::memcpy(lb, &len, 8);
  rec.append(lb, 8);
  uint32_t c = masked_crc(lb, 8);
  rec.append(reinterpret_cast<const char*>(&c), 4);
  rec += data;
  c = masked_crc(data.data(), data.size());
  rec.append(reinterpret_cast<const char*>(&c), 4);
  std::fwrite(rec.data(), 1, rec.size(), f_);
}

void EventWriter::scalar(const std::string& name, double value, int64_t step) {
  std::string val;  // Summary.Value{tag=1, simple_value=2}
  bytes_field(val, 1, name);
  tag(val, 2, 5);
  fixed32(val, static_cast<float>(value));
  std::string summary;  // Summary{value=1}
  bytes_field(summary, 1, val);
  std::string ev;  // Event{wall_time=1, step=2, summary=5}
  tag(ev, 1, 1);
  fixed64(ev, now_seconds());
  tag(ev, 2, 0);
  varint(ev, static_cast<uint64_t>(step));
  bytes_field(ev, 5, summary);
  record(ev);
}

void EventWriter::flush() {
  if (f_) std::fflush(f_);
}

}  // namespace oar
