// Paddle LoDTensor files written by PaddlePaddle 2.6.2 itself (tests/nlp/io/data, made by
// tests/nlp/golden/paddle_tensor_fixtures.py), corrupt variants of them, and the real LAC
// parameters that Debian's python3-jieba ships.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/core/error.h"
#include "engine/io/json.h"
#include "nlp/io/paddle_tensor.h"

namespace oar::nlp {
namespace {

const std::string kData = std::string(OAR_SOURCE_DIR) + "/tests/nlp/io/data";

Json expected() {
  std::ifstream in(kData + "/expected.json", std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return Json::parse(ss.str(), "expected.json").at("tensors");
}

std::vector<uint8_t> bytes_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), {});
}

std::string write_tmp(const std::string& name, const std::vector<uint8_t>& b) {
  const auto dir = std::filesystem::temp_directory_path() / "oar_paddle_tensor_test";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / name).string();
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  return path;
}

void expect_matches(const Tensor& t, const Json& e, const std::string& what) {
  Shape shape;
  for (const auto& d : e.at("shape").as_array()) shape.push_back(d.as_int());
  ASSERT_EQ(t.shape(), shape) << what;
  const auto& vals = e.at("values").as_array();
  ASSERT_EQ(static_cast<size_t>(t.numel()), vals.size()) << what;
  if (t.dtype() == DType::i64) {
    const auto v = t.to_vector<int64_t>();
    for (size_t k = 0; k < v.size(); ++k) EXPECT_EQ(v[k], vals[k].as_int()) << what << " " << k;
    return;
  }
  const Tensor f = t.to(DType::f32);
  const auto v = f.to_vector<float>();
  for (size_t k = 0; k < v.size(); ++k)
    EXPECT_EQ(v[k], static_cast<float>(vals[k].as_double())) << what << " element " << k;
}

TEST(PaddleTensor, EveryParameterDtypeWrittenByPaddle) {
  const Json e = expected();
  const std::pair<const char*, DType> cases[] = {{"FP32", DType::f32},  {"FP16", DType::f16},
                                                 {"BF16", DType::bf16}, {"FP64", DType::f32},
                                                 {"INT64", DType::i64}, {"INT32", DType::i32},
                                                 {"UINT8", DType::u8},  {"BOOL", DType::boolean}};
  for (const auto& [name, dtype] : cases) {
    const PaddleTensor p = read_paddle_tensor(kData + "/" + name + ".pdtensor");
    EXPECT_EQ(p.tensor.dtype(), dtype) << name;
    EXPECT_EQ(paddle_dtype_name(p.file_dtype), name);
    EXPECT_TRUE(p.lod.empty());
    expect_matches(p.tensor, e.at(name), name);
  }
}

TEST(PaddleTensor, LodLevelsAndScalar) {
  const Json e = expected();
  const PaddleTensor p = read_paddle_tensor(kData + "/lod.pdtensor");
  expect_matches(p.tensor, e.at("lod"), "lod");
  const auto& want = e.at("lod").at("lod").as_array();
  ASSERT_EQ(p.lod.size(), want.size());
  for (size_t l = 0; l < want.size(); ++l) {
    ASSERT_EQ(p.lod[l].size(), want[l].size());
    for (size_t k = 0; k < want[l].size(); ++k)
      EXPECT_EQ(p.lod[l][k], static_cast<uint64_t>(want[l].as_array()[k].as_int()));
  }
  const PaddleTensor s = read_paddle_tensor(kData + "/scalar.pdtensor");
  EXPECT_EQ(s.tensor.dim(), 0);
  EXPECT_EQ(s.tensor.item<float>(), 2.5f);
}

TEST(PaddleTensor, CombinedParamsInSortedNameOrder) {
  const Json e = expected().at("combined");
  std::vector<std::string> names;
  for (const auto& [k, v] : e.as_object()) names.push_back(k);
  const auto m = read_paddle_combined(kData + "/combined/__params__", names);
  for (const auto& n : names) expect_matches(m.at(n), e.at(n), n);
  // One name too many or too few is reported, not guessed.
  auto more = names;
  more.push_back("extra");
  EXPECT_THROW(read_paddle_combined(kData + "/combined/__params__", more), Error);
  EXPECT_THROW(read_paddle_combined(kData + "/combined/__params__", {names[0]}), Error);
}

TEST(PaddleTensor, SerializeMatchesPaddleBytes) {
  for (const char* name : {"FP32", "INT64", "BOOL", "lod", "scalar", "BF16"}) {
    const std::string path = kData + "/" + name + ".pdtensor";
    const PaddleTensor p = read_paddle_tensor(path);
    EXPECT_EQ(serialize_paddle_tensor(p.tensor, p.lod), bytes_of(path)) << name;
  }
}

std::string error_of(const std::vector<uint8_t>& b, const std::string& name) {
  const std::string path = write_tmp(name, b);
  try {
    read_paddle_tensor(path);
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;  // errors name the file
    return msg;
  }
  ADD_FAILURE() << name << " was accepted";
  return "";
}

TEST(PaddleTensor, CorruptFilesAreClearErrors) {
  const auto good = bytes_of(kData + "/FP32.pdtensor");  // 4+8+4+4+desc(6)+48 bytes
  auto b = good;
  b[0] = 3;
  EXPECT_NE(error_of(b, "version").find("LoDTensor version 3"), std::string::npos);
  b = good;
  b[4] = 200;
  EXPECT_NE(error_of(b, "levels").find("LoD level count 200"), std::string::npos);
  b = good;
  b[12] = 1;
  EXPECT_NE(error_of(b, "tversion").find("tensor version 1"), std::string::npos);
  b = good;
  b[16] = 0;
  EXPECT_NE(error_of(b, "descsize0").find("TensorDesc size 0"), std::string::npos);
  b = good;
  b[16] = 100;
  EXPECT_NE(error_of(b, "descsize_big").find("truncated"), std::string::npos);
  b = good;
  b[21] = 23;  // data_type COMPLEX64
  EXPECT_NE(error_of(b, "complex").find("COMPLEX64 is not supported"), std::string::npos);
  b = good;
  b[20] = 0x18;  // field 3 varint instead of field 1: no data_type left
  EXPECT_NE(error_of(b, "notype").find("TensorDesc"), std::string::npos);
  b = good;
  b[23] = 5;  // dims [5, 4]: more data than the file holds
  EXPECT_NE(error_of(b, "short").find("truncated"), std::string::npos);
  b = good;
  b.push_back(0);
  EXPECT_NE(error_of(b, "trailing").find("1 trailing bytes"), std::string::npos);
  b.assign(good.begin(), good.begin() + 10);
  EXPECT_NE(error_of(b, "cut").find("truncated"), std::string::npos);
  b = good;
  b[22] = 0xFF;  // an unterminated varint inside the desc
  b[23] = 0xFF;
  b[24] = 0xFF;
  b[25] = 0xFF;
  EXPECT_NE(error_of(b, "varint").find("varint"), std::string::npos);
  // LoD levels must be consistent with each other and with the rows.
  auto lod = bytes_of(kData + "/lod.pdtensor");
  lod[20] = 1;  // level 0's first offset
  EXPECT_NE(error_of(lod, "lod0").find("starts at 1"), std::string::npos);
  lod = bytes_of(kData + "/lod.pdtensor");
  lod[12] = 12;  // level 0 byte size not a multiple of 8
  EXPECT_NE(error_of(lod, "lodsize").find("multiple of 8"), std::string::npos);
  const PaddleTensor p = read_paddle_tensor(kData + "/lod.pdtensor");
  auto bad = p.lod;
  bad[1].back() = 4;
  EXPECT_NE(error_of(serialize_paddle_tensor(p.tensor, bad), "lodrows").find("has 5 rows"),
            std::string::npos);
  bad = p.lod;
  bad[1] = {0, 3, 1, 5};
  EXPECT_NE(error_of(serialize_paddle_tensor(p.tensor, bad), "loddec").find("less than"),
            std::string::npos);
  EXPECT_THROW(read_paddle_tensor(kData + "/absent"), Error);
  EXPECT_THROW(read_paddle_dir(kData + "/absent"), Error);
  EXPECT_THROW(read_paddle_dir(kData, {"FP32.pdtensor", "nope"}), Error);
}

TEST(PaddleTensor, RealLacParameters) {
  const std::string dir = "/usr/lib/python3/dist-packages/jieba/lac_small/model_baseline";
  if (!std::filesystem::exists(dir + "/crfw")) GTEST_SKIP() << dir << " absent (python3-jieba)";
  const auto m = read_paddle_dir(dir);
  EXPECT_EQ(m.size(), 20u);  // crfw, word_emb, fc_0..4 and gru_0..3 (w_0, b_0)
  EXPECT_EQ(m.at("word_emb").shape(), (Shape{20941, 128}));
  EXPECT_EQ(m.at("crfw").shape(), (Shape{59, 57}));
  EXPECT_EQ(m.at("fc_0.w_0").shape(), (Shape{128, 384}));
  EXPECT_EQ(m.at("fc_2.w_0").shape(), (Shape{256, 384}));
  EXPECT_EQ(m.at("fc_4.w_0").shape(), (Shape{256, 57}));
  EXPECT_EQ(m.at("fc_4.b_0").shape(), (Shape{57}));
  EXPECT_EQ(m.at("gru_0.w_0").shape(), (Shape{128, 384}));
  EXPECT_EQ(m.at("gru_3.b_0").shape(), (Shape{1, 384}));
  for (const auto& [k, t] : m) EXPECT_EQ(t.dtype(), DType::f32) << k;
}

}  // namespace
}  // namespace oar::nlp
