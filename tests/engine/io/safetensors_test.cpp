#include "engine/io/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "engine/core/error.h"

using namespace oar;
using namespace oar::io;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir() {
  fs::path d = fs::temp_directory_path() / ("oar_safetensors_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

// A file per the spec: u64 LE header length, header, data.
std::string make_file(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  for (int k = 0; k < 8; ++k) out[static_cast<size_t>(k)] = static_cast<char>(n >> (8 * k));
  return out + header + data;
}

std::string write_bytes(const std::string& name, const std::string& bytes) {
  const fs::path p = temp_dir() / name;
  std::ofstream(p, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return p.string();
}

template <typename T>
std::string raw(std::initializer_list<T> v) {
  std::string s(v.size() * sizeof(T), '\0');
  std::memcpy(s.data(), std::data(v), s.size());
  return s;
}

// Expects reading `bytes` to throw an Error whose message names the file and contains `what`.
void expect_corrupt(const std::string& name, const std::string& bytes, const std::string& what) {
  const std::string path = write_bytes(name, bytes);
  try {
    read_safetensors(path);
    ADD_FAILURE() << name << ": expected an error containing '" << what << "'";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(what), std::string::npos) << name << ": " << msg;
  }
}

}  // namespace

TEST(Safetensors, RoundTripEveryDtype) {
  std::vector<std::pair<std::string, Tensor>> ts = {
      {"f32", tensor<float>({1.5f, -2.f, 3.25f, 0.f, 1e-30f, -7.f}, {2, 3})},
      {"bf16", tensor<float>({1.5f, -2.f, 3.25f}, {3}).to(DType::bf16)},
      {"f16", tensor<float>({0.5f, 65504.f}, {2, 1}).to(DType::f16)},
      {"i64", tensor<int64_t>({-1, 1ll << 40, 7}, {3})},
      {"i32", tensor<int32_t>({-5, 6}, {1, 2})},
      {"u8", tensor<uint8_t>({0, 255, 17}, {3})},
      {"bool", tensor<bool>({true, false, true, true}, {2, 2})},
      {"scalar", scalar_tensor(4.0)},
      {"empty", zeros({0, 3})},
      {"transposed", arange(0.0, 6.0, 1.0, DType::f32).reshape({2, 3}).t()},
  };
  const std::map<std::string, std::string> meta = {{"format", "pt"}, {"note", "a \"quoted\"\n"}};
  const std::string path = (temp_dir() / "all.safetensors").string();
  write_safetensors(path, ts, meta);
  const SafetensorsFile f = read_safetensors(path);
  EXPECT_EQ(f.metadata, meta);
  ASSERT_EQ(f.tensors.size(), ts.size());
  for (const auto& [name, t] : ts) {
    const Tensor r = f.get(name);
    ASSERT_TRUE(r.defined()) << name;
    EXPECT_EQ(r.dtype(), t.dtype()) << name;
    EXPECT_EQ(r.shape(), t.shape()) << name;
    if (t.dtype() == DType::i64)
      EXPECT_EQ(r.to_vector<int64_t>(), t.to_vector<int64_t>()) << name;
    else
      EXPECT_EQ(r.to_vector<float>(), t.to_vector<float>()) << name;
  }
  // Layout per the format: 8-aligned header padded with spaces, keys sorted.
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  const std::string header = bytes.substr(8, n);
  EXPECT_EQ(header[0], '{');
  EXPECT_EQ(header.find("\"__metadata__\""), 1u);
  EXPECT_LT(header.find("\"bf16\""), header.find("\"bool\""));
  EXPECT_LT(header.find("\"f16\""), header.find("\"u8\""));
  EXPECT_EQ(header.find_last_not_of(' '), header.find_last_of('}'));
  // No temp file left behind.
  for (const auto& e : fs::directory_iterator(temp_dir()))
    EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos) << e.path();
}

TEST(Safetensors, ReadsHandCraftedFileAndWidensTypes) {
  const std::string header =
      "{\"__metadata__\":{\"format\":\"pt\"},"
      "\"a\\u00e9\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]},"
      "\"u64\":{\"dtype\":\"U64\",\"shape\":[1],\"data_offsets\":[16,24]},"
      "\"u32\":{\"dtype\":\"U32\",\"shape\":[1],\"data_offsets\":[24,28]},"
      "\"i16\":{\"dtype\":\"I16\",\"shape\":[2],\"data_offsets\":[28,32]},"
      "\"u16\":{\"dtype\":\"U16\",\"shape\":[1],\"data_offsets\":[32,34]},"
      "\"i8\":{\"dtype\":\"I8\",\"shape\":[2],\"data_offsets\":[34,36]},"
      "\"s\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[36,40]}}   ";
  const std::string data = raw<double>({0.25, -3.5}) + raw<uint64_t>({123456789012ull}) +
                           raw<uint32_t>({4000000000u}) + raw<int16_t>({-300, 300}) +
                           raw<uint16_t>({65535}) + raw<int8_t>({-128, 127}) + raw<int32_t>({9});
  const std::string path = write_bytes("crafted.safetensors", make_file(header, data));
  const SafetensorsFile f = read_safetensors(path);
  EXPECT_EQ(f.metadata.at("format"), "pt");
  ASSERT_EQ(f.tensors.size(), 7u);
  EXPECT_EQ(f.tensors[0].first, "a\xc3\xa9");  // offset order, \u escape decoded to UTF-8
  EXPECT_EQ(f.tensors[0].second.dtype(), DType::f32);
  EXPECT_EQ(f.tensors[0].second.to_vector<float>(), (std::vector<float>{0.25f, -3.5f}));
  EXPECT_EQ(f.get("u64").dtype(), DType::i64);
  EXPECT_EQ(f.get("u64").to_vector<int64_t>()[0], 123456789012ll);
  EXPECT_EQ(f.get("u32").to_vector<int64_t>()[0], 4000000000ll);
  EXPECT_EQ(f.get("i16").dtype(), DType::i32);
  EXPECT_EQ(f.get("i16").to_vector<int32_t>(), (std::vector<int32_t>{-300, 300}));
  EXPECT_EQ(f.get("u16").to_vector<int32_t>()[0], 65535);
  EXPECT_EQ(f.get("i8").to_vector<int32_t>(), (std::vector<int32_t>{-128, 127}));
  EXPECT_EQ(f.get("s").shape(), Shape{});
  EXPECT_EQ(f.get("s").item<int32_t>(), 9);
  EXPECT_FALSE(f.get("missing").defined());
}

TEST(Safetensors, CorruptFilesGiveErrors) {
  const std::string ok_header = "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
  const std::string ok_data = raw<float>({1.f, 2.f});
  ASSERT_NO_THROW(read_safetensors(write_bytes("ok.safetensors", make_file(ok_header, ok_data))));

  expect_corrupt("tiny.safetensors", "abc", "truncated");
  expect_corrupt("trunc_header.safetensors", make_file(ok_header, ok_data).substr(0, 30),
                 "truncated");
  expect_corrupt("trunc_data.safetensors", make_file(ok_header, ok_data.substr(0, 4)),
                 "out of range");
  std::string huge = make_file(ok_header, ok_data);
  huge[5] = 0x7f;  // header length ~ 2^47
  expect_corrupt("huge.safetensors", huge, "exceeds the limit");
  expect_corrupt("notobj.safetensors", make_file("[1,2]   ", ""), "must be a JSON object");
  expect_corrupt(
      "badjson.safetensors",
      make_file("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", ok_data),
      "malformed header JSON");
  expect_corrupt("badjson2.safetensors",
                 make_file("{\"x\":{\"dtype\":F32,\"shape\":[2],\"data_offsets\":[0,8]}}", ok_data),
                 "malformed header JSON");
  expect_corrupt(
      "dtype.safetensors",
      make_file("{\"x\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]}}", "ab"),
      "unsupported dtype 'F8_E4M3'");
  expect_corrupt(
      "range.safetensors",
      make_file("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", ok_data),
      "out of range");
  expect_corrupt(
      "length.safetensors",
      make_file("{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", ok_data),
      "needs 12 bytes but data_offsets span 8");
  expect_corrupt("overlap.safetensors",
                 make_file("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                           "\"y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                           ok_data),
                 "overlaps");
  expect_corrupt(
      "hole.safetensors",
      make_file("{\"y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", ok_data),
      "hole");
  expect_corrupt("trailing.safetensors", make_file(ok_header, ok_data + "zzzz"), "trailing bytes");
  expect_corrupt("dup.safetensors",
                 make_file("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                           "\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                           ok_data),
                 "duplicate key \"x\"");
  expect_corrupt("meta.safetensors",
                 make_file("{\"__metadata__\":{\"n\":1},\"x\":{\"dtype\":\"F32\",\"shape\":[2],"
                           "\"data_offsets\":[0,8]}}",
                           ok_data),
                 "must be a string");
  expect_corrupt(
      "negative.safetensors",
      make_file("{\"x\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", ok_data),
      "non-negative integer");
  expect_corrupt(
      "bigint.safetensors",
      make_file(
          "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,99999999999999999999]}}",
          ok_data),
      "out of range");
  expect_corrupt("empty.safetensors", "", "empty file");
  EXPECT_THROW(read_safetensors((temp_dir() / "absent.safetensors").string()), Error);
}

TEST(Safetensors, WriteIsAtomicAndReportsBadPaths) {
  const std::string path = (temp_dir() / "atomic.safetensors").string();
  write_safetensors(path, {{"a", ones({2})}});
  write_safetensors(path, {{"b", zeros({3})}});  // replaces the old file whole
  const SafetensorsFile f = read_safetensors(path);
  ASSERT_EQ(f.tensors.size(), 1u);
  EXPECT_EQ(f.tensors[0].first, "b");
  try {
    write_safetensors("/nonexistent-dir/x.safetensors", {{"a", ones({2})}});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/x.safetensors"), std::string::npos);
  }
  EXPECT_THROW(write_safetensors(path, {{"a", ones({1})}, {"a", ones({1})}}), Error);
  // The failed write left the previous file intact.
  EXPECT_EQ(read_safetensors(path).tensors[0].first, "b");
}
