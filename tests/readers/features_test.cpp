// Video feature files (readers/features): YouTube-8M quantization, the file round trip, corrupt
// and truncated files, and the video_features reader's truncation, padding and labels.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "engine/config/config.h"
#include "engine/config/error.h"
#include "engine/core/error.h"
#include "engine/io/safetensors.h"
#include "readers/features/feature_dataset.h"
#include "readers/features/feature_file.h"
#include "readers/registry.h"

namespace fs = std::filesystem;
using namespace oar;
using namespace oar::readers;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("oar_features_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

// [t, d] with values (frame + 1) * 0.1 + channel * 0.01 - 1, inside [-2, 2].
Tensor ramp(int64_t t, int64_t d, double offset = 0) {
  std::vector<float> v;
  for (int64_t i = 0; i < t; ++i)
    for (int64_t j = 0; j < d; ++j)
      v.push_back(static_cast<float>((i + 1) * 0.1 + j * 0.01 - 1 + offset));
  return tensor(v, {t, d});
}

FeatureRecord record(int64_t t, std::vector<int64_t> labels, const std::string& id = "vid") {
  FeatureRecord r;
  r.video_id = id;
  r.labels = std::move(labels);
  r.features = {{"rgb", ramp(t, 16)}, {"audio", ramp(t, 4, 0.5)}};
  return r;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(FeatureQuantization, YouTube8MLevelsAndErrorBound) {
  const Quantization q;  // min -2, max 2
  Tensor levels = tensor<uint8_t>({0, 1, 128, 255});
  const std::vector<float> v = dequantize(levels, q).to_vector<float>();
  // value = q * 4/255 + 4/512 - 2 (YT-8M's utils.Dequantize)
  EXPECT_FLOAT_EQ(v[0], static_cast<float>(4.0 / 512 - 2));
  EXPECT_FLOAT_EQ(v[1], static_cast<float>(4.0 / 255 + 4.0 / 512 - 2));
  EXPECT_FLOAT_EQ(v[2], static_cast<float>(128 * 4.0 / 255 + 4.0 / 512 - 2));
  EXPECT_FLOAT_EQ(v[3], static_cast<float>(4.0 + 4.0 / 512 - 2));
  // levels survive a dequantize -> quantize round trip exactly
  EXPECT_EQ(quantize(dequantize(levels, q), q).to_vector<uint8_t>(), levels.to_vector<uint8_t>());
  // any value in [min, max] comes back within half a level; outside, it clamps
  std::vector<float> xs;
  for (int i = 0; i <= 4000; ++i) xs.push_back(static_cast<float>(-2.0 + i * 0.001));
  Tensor x = tensor(xs, {static_cast<int64_t>(xs.size())});
  const std::vector<float> back = dequantize(quantize(x, q), q).to_vector<float>();
  double worst = 0;
  for (size_t i = 0; i < xs.size(); ++i) worst = std::max(worst, std::abs(double(back[i]) - xs[i]));
  EXPECT_LE(worst, q.scalar() / 2 + 1e-6);
  EXPECT_GT(worst, q.scalar() / 4);  // the bound is not vacuous
  EXPECT_EQ(quantize(tensor<float>({-9.f, 9.f}), q).to_vector<uint8_t>(),
            (std::vector<uint8_t>{0, 255}));
}

TEST(FeatureFile, RoundTripQuantizedAndFloat) {
  TempDir tmp;
  const FeatureRecord r = record(5, {3, 1}, "abc");
  const std::string qpath = (tmp.path / "q.safetensors").string();
  write_feature_file(qpath, r);
  FeatureRecord back = read_feature_file(qpath);
  EXPECT_EQ(back.video_id, "abc");
  EXPECT_EQ(back.labels, (std::vector<int64_t>{3, 1}));
  EXPECT_TRUE(back.quantized);
  EXPECT_EQ(back.frames(), 5);
  ASSERT_EQ(back.features.size(), 2u);
  for (const auto& [name, t] : back.features) EXPECT_EQ(t.dtype(), DType::u8) << name;
  for (const char* name : {"rgb", "audio"}) {
    const std::vector<float> a = r.get(name).to_vector<float>(),
                             b = back.get(name).to_vector<float>();
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], back.range.scalar() / 2 + 1e-6);
  }
  // f32 files are exact; a custom range is kept
  const std::string fpath = (tmp.path / "f.safetensors").string();
  write_feature_file(fpath, r, {false, {}});
  back = read_feature_file(fpath);
  EXPECT_FALSE(back.quantized);
  EXPECT_EQ(back.get("rgb").to_vector<float>(), r.get("rgb").to_vector<float>());
  FeatureWriteOptions wide{true, {-8, 8}};
  write_feature_file(qpath, r, wide);
  EXPECT_DOUBLE_EQ(read_feature_file(qpath).range.max, 8.0);
  EXPECT_NE(error_of([&] { back.get("flow", fpath); }).find("no feature 'flow'"),
            std::string::npos);
  // the writer refuses features of different lengths
  FeatureRecord bad = r;
  bad.features[1].second = ramp(4, 4);
  EXPECT_NE(error_of([&] { write_feature_file(qpath, bad); }).find("frames"), std::string::npos);
}

TEST(FeatureFile, CorruptAndForeignFilesNameThePath) {
  TempDir tmp;
  const std::string good = (tmp.path / "good.safetensors").string();
  write_feature_file(good, record(6, {0}));
  std::string bytes;
  {
    std::ifstream in(good, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const std::string truncated = (tmp.path / "truncated.safetensors").string();
  std::ofstream(truncated, std::ios::binary) << bytes.substr(0, bytes.size() - 10);
  EXPECT_NE(error_of([&] { read_feature_file(truncated); }).find(truncated), std::string::npos);
  const std::string garbage = (tmp.path / "garbage.safetensors").string();
  std::ofstream(garbage, std::ios::binary) << "this is not a safetensors file at all";
  EXPECT_NE(error_of([&] { read_feature_file(garbage); }).find(garbage), std::string::npos);
  EXPECT_NE(error_of([&] {
              read_feature_file((tmp.path / "missing.safetensors").string());
            }).find("missing.safetensors"),
            std::string::npos);
  // a valid safetensors file that is not ours (weights, say)
  const std::string weights = (tmp.path / "weights.safetensors").string();
  io::write_safetensors(weights, {{"w", ramp(2, 2)}});
  const std::string msg = error_of([&] { read_feature_file(weights); });
  EXPECT_NE(msg.find(weights), std::string::npos);
  EXPECT_NE(msg.find("not an oar video feature file"), std::string::npos) << msg;
  // ours, but with features of different lengths and a broken label list
  const std::string uneven = (tmp.path / "uneven.safetensors").string();
  io::write_safetensors(uneven, {{"rgb", ramp(3, 2)}, {"audio", ramp(2, 2)}},
                        {{"format", kFeatureFormat}, {"version", "1"}, {"quantization", "none"}});
  EXPECT_NE(error_of([&] { read_feature_file(uneven); }).find("frames"), std::string::npos);
  const std::string labels = (tmp.path / "labels.safetensors").string();
  io::write_safetensors(
      labels, {{"rgb", ramp(3, 2)}},
      {{"format", kFeatureFormat}, {"version", "1"}, {"quantization", "none"}, {"labels", "1,x"}});
  EXPECT_NE(error_of([&] { read_feature_file(labels); }).find("bad label 'x'"), std::string::npos);
}

TEST(FeatureDataset, TruncatesPadsAndLabels) {
  TempDir tmp;
  write_feature_file((tmp.path / "a.safetensors").string(), record(3, {0, 2}, "a"));
  write_feature_file((tmp.path / "b.safetensors").string(), record(7, {}, "b"));
  write_feature_file((tmp.path / "c.safetensors").string(), record(12, {4}, "c"));
  std::ofstream(tmp.path / "all.list")
      << "# features\na.safetensors\nb.safetensors\n\nc.safetensors\n";
  register_components();
  const std::string yaml =
      "data:\n  name: video_features\n  list: " + (tmp.path / "all.list").string() +
      "\n  num_classes: 5\n  feature_dims: [16, 4]\n  max_frames: 10\n"
      "  batch_size: 2\n  num_workers: 0\n  valid: {shuffle: false}\n";
  Config c = Config::from_string(yaml, "f.yaml");
  std::shared_ptr<DataLoader> loader = make_loader(c, "valid", 0);
  loader->start_epoch(0);
  Batch b;
  ASSERT_TRUE(loader->next(b));
  EXPECT_EQ(b.size, 2);
  EXPECT_EQ(b["rgb"].shape(), (Shape{2, 7, 16}));  // padded to the batch's longest
  EXPECT_EQ(b["audio"].shape(), (Shape{2, 7, 4}));
  EXPECT_EQ(b["length"].to_vector<int64_t>(), (std::vector<int64_t>{3, 7}));
  EXPECT_EQ(b["label"].to_vector<float>(), (std::vector<float>{1, 0, 1, 0, 0, /**/ 0, 0, 0, 0, 0}));
  const std::vector<float> rgb = b["rgb"].to_vector<float>();
  // sample 0: frames 0..2 hold data (dequantized ramp), frames 3..6 are zero padding
  EXPECT_NEAR(rgb[0], 0.1 - 1, 0.008);
  EXPECT_NEAR(rgb[2 * 16 + 1], 0.3 + 0.01 - 1, 0.008);
  for (int t = 3; t < 7; ++t)
    for (int d = 0; d < 16; ++d) ASSERT_EQ(rgb[t * 16 + d], 0.0f) << t << "," << d;
  EXPECT_EQ(b.meta[1].at("video_id").as_string(), "b");
  ASSERT_TRUE(loader->next(b));
  EXPECT_EQ(b["rgb"].shape(), (Shape{1, 10, 16}));  // 12 frames truncated to max_frames
  EXPECT_EQ(b["length"].to_vector<int64_t>(), (std::vector<int64_t>{10}));
  EXPECT_NEAR(b["rgb"].to_vector<float>()[9 * 16], 1.0 - 1, 0.008);  // frame 9 is the 10th

  // pad_to: max_frames pads every batch to max_frames
  Config fixed = Config::from_string(yaml + "  pad_to: max_frames\n", "f.yaml");
  loader = make_loader(fixed, "valid", 0);
  loader->start_epoch(0);
  ASSERT_TRUE(loader->next(b));
  EXPECT_EQ(b["rgb"].shape(), (Shape{2, 10, 16}));

  // a folder works as the list; a label beyond num_classes names the file
  FeatureDatasetOptions o;
  o.num_classes = 4;
  o.feature_dims = {16, 4};
  FeatureDataset folder(read_feature_list(tmp.path.string(), ""), o);
  EXPECT_EQ(folder.size(), 3);
  Generator g;
  EXPECT_NE(error_of([&] { folder.get(2, g); }).find("c.safetensors: label 4 out of range"),
            std::string::npos);
  // a width that differs from feature_dims names the file
  o.num_classes = 5;
  o.feature_dims = {1024, 128};
  FeatureDataset wrong(read_feature_list(tmp.path.string(), ""), o);
  const std::string msg = error_of([&] { wrong.get(0, g); });
  EXPECT_NE(msg.find("a.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("1024"), std::string::npos) << msg;
}

TEST(FeatureDataset, CorruptFileFailsOrIsSkipped) {
  TempDir tmp;
  write_feature_file((tmp.path / "a.safetensors").string(), record(4, {1}, "a"));
  std::ofstream(tmp.path / "b.safetensors", std::ios::binary)
      << std::string("\x10\0\0\0\0\0\0\0{\"x\":", 13);  // header cut short
  write_feature_file((tmp.path / "c.safetensors").string(), record(2, {2}, "c"));
  FeatureDatasetOptions o;
  o.num_classes = 3;
  o.feature_dims = {16, 4};
  const std::vector<std::string> files = read_feature_list(tmp.path.string(), "");
  Generator g;
  FeatureDataset strict(files, o);
  EXPECT_NE(error_of([&] { strict.get(1, g); }).find("b.safetensors"), std::string::npos);
  o.skip_errors = true;
  FeatureDataset lenient(files, o);
  Example ex = lenient.get(1, g);  // b is unreadable: the next readable sample (c) stands in
  EXPECT_EQ(ex.meta.at("video_id").as_string(), "c");
  EXPECT_NE(ex.meta.at("skipped").as_string().find("b.safetensors"), std::string::npos);
  EXPECT_EQ(ex.fields.at("length").item<int64_t>(), 2);
  // a list naming no files, and a missing list, are errors naming the list
  std::ofstream(tmp.path / "empty.list") << "# nothing\n";
  EXPECT_NE(error_of([&] {
              read_feature_list((tmp.path / "empty.list").string(), "");
            }).find("empty.list"),
            std::string::npos);
  Config c = Config::from_string(
      "data:\n  name: video_features\n  list: " + (tmp.path / "nope.list").string() +
          "\n  num_classes: 3\n  valid: {}\n",
      "f.yaml");
  register_components();
  try {
    make_loader(c, "valid", 0);
    FAIL() << "a missing list must be an error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("nope.list"), std::string::npos) << e.what();
  }
}
