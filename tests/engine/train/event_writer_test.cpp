// TensorBoard event files: CRC32C against its published check value, and the TFRecord framing
// (length, masked CRC of the length, payload, masked CRC of the payload) of every record written.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "engine/train/event_writer.h"

using namespace oar;

namespace {
uint32_t masked(const std::string& s, size_t off, size_t n) {
  const uint32_t c = crc32c(s.data() + off, n);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}
}  // namespace

TEST(EventWriter, Crc32cCheckValue) {
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);
}

TEST(EventWriter, RecordsAreFramedWithValidChecksums) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("oar_events_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::string path;
  {
    EventWriter w(dir.string());
    w.scalar("train/loss", 0.5, 10);
    w.scalar("valid/top1", 0.875, 20);
    path = w.path();
  }
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t off = 0;
  int records = 0;
  while (off < bytes.size()) {
    ASSERT_LE(off + 12, bytes.size());
    uint64_t len;
    std::memcpy(&len, bytes.data() + off, 8);
    uint32_t crc_len, crc_data;
    std::memcpy(&crc_len, bytes.data() + off + 8, 4);
    EXPECT_EQ(crc_len, masked(bytes, off, 8));
    ASSERT_LE(off + 12 + len + 4, bytes.size());
    std::memcpy(&crc_data, bytes.data() + off + 12 + len, 4);
    EXPECT_EQ(crc_data, masked(bytes, off + 12, len));
    if (records == 0) {
      EXPECT_NE(bytes.find("brain.Event:2", off), std::string::npos);
    }
    off += 12 + len + 4;
    ++records;
  }
  EXPECT_EQ(records, 3);  // file version + two scalars
  EXPECT_NE(bytes.find("train/loss"), std::string::npos);
  std::filesystem::remove_all(dir);
}
