// oar video extract's library call: the rows of a feature file are the TSN features of the
// video's frames in time order (checked against the backbone on frames decoded separately),
// labels and ids are kept, uint8 files dequantize to within half a level, a corrupt video is
// reported and left out of the list while the others are written, and name clashes are refused.
#include <gtest/gtest.h>

#include <fstream>

#include "engine/ops.h"
#include "readers/features/feature_dataset.h"
#include "readers/features/feature_file.h"
#include "tests/video/tagging/tagging_support.h"
#include "video/extract/extract.h"
#include "video/models/tsm.h"
#include "vision/models/resnet.h"
#include "vision/register.h"

using namespace oar;
using namespace oar::video;
using namespace oar::video::testing;

namespace {

TEST(Extract, FeatureFilesHoldTheBackbonesFeaturesInTimeOrder) {
  register_for_tests();
  TempDir d("video_extract_test");
  synth_clips(d.path / "clips", 3);
  LoadedModel tsn = make_checkpoint(kTsnYaml, d.path / "tsn", 11);
  FrameFeatureExtractor ex(tsn);
  auto entries = readers::read_video_list((d.path / "clips" / "train_appearance.list").string(), "",
                                          false, true);
  ASSERT_EQ(entries.size(), 3u);
  // A corrupt file in the middle.
  std::ofstream(d.path / "clips" / "train" / "zz_broken.mp4") << "garbage";
  entries.insert(
      entries.begin() + 1,
      readers::VideoEntry{(d.path / "clips" / "train" / "zz_broken.mp4").string(), {2}, 0});

  ExtractOptions o;
  o.out_dir = (d.path / "f32").string();
  o.base = (d.path / "clips").string();
  o.selection.stride = 2;  // frames 0, 2, ..., 14
  o.chunk_frames = 3;      // several chunks per video
  std::vector<ExtractFailure> reported;
  const ExtractResult r =
      extract_features(ex, entries, o, {}, [&](const ExtractFailure& f) { reported.push_back(f); });
  EXPECT_EQ(r.written, 3);
  ASSERT_EQ(r.failures.size(), 1u);
  ASSERT_EQ(reported.size(), 1u);
  EXPECT_NE(r.failures[0].error.find("zz_broken.mp4"), std::string::npos) << r.failures[0].error;
  const auto files = readers::read_feature_list(r.list_file, "");
  ASSERT_EQ(files.size(), 3u);
  EXPECT_EQ(files[0], (d.path / "f32" / "train" / "clip_000000.safetensors").string());

  // Frames decoded and preprocessed separately, all at once, then the backbone.
  readers::VideoDecoder dec(entries[0].path);
  Generator rng(0);
  const Tensor frames =
      preprocess_clip(dec.decode({0, 2, 4, 6, 8, 10, 12, 14}), ex.preprocess(), 0, rng);
  const std::vector<float> want = ex.features(frames, 5).to_vector<float>();
  const readers::FeatureRecord rec = readers::read_feature_file(files[0]);
  EXPECT_EQ(rec.video_id, "train/clip_000000");
  EXPECT_EQ(rec.labels, entries[0].labels);
  EXPECT_FALSE(rec.quantized);
  const Tensor got = rec.get("rgb");
  ASSERT_EQ(got.shape(), (Shape{8, 128}));
  const std::vector<float> g = got.to_vector<float>();
  double max_diff = 0, spread = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    max_diff = std::max(max_diff, static_cast<double>(std::abs(g[i] - want[i])));
    spread = std::max(spread, static_cast<double>(std::abs(g[i] - g[i % 128])));
  }
  EXPECT_LT(max_diff, 1e-5);
  EXPECT_GT(spread, 1e-3);  // frames differ, so rows differ

  // The reader takes the list.
  readers::FeatureDatasetOptions fo;
  fo.num_classes = 3;
  fo.feature_names = {"rgb"};
  fo.feature_dims = {128};
  readers::FeatureDataset ds(files, fo);
  Generator g0(0);
  EXPECT_EQ(ds.get(0, g0).fields.at("length").item<int64_t>(), 8);

  // uint8: within half a level of the f32 features.
  o.out_dir = (d.path / "u8").string();
  o.quantize = true;
  o.range = {0.0, 4.0};
  const ExtractResult q = extract_features(ex, {entries[0]}, o);
  ASSERT_EQ(q.written, 1);
  const readers::FeatureRecord qr =
      readers::read_feature_file((d.path / "u8" / "train" / "clip_000000.safetensors").string());
  EXPECT_TRUE(qr.quantized);
  const std::vector<float> qv = qr.get("rgb").to_vector<float>();
  for (size_t i = 0; i < qv.size(); ++i)
    if (g[i] <= 4.0) {
      ASSERT_LE(std::abs(qv[i] - g[i]), o.range.scalar() / 2 + 1e-5) << i;
    }

  // Two videos that would write one file.
  auto clash = entries;
  clash[1] = entries[0];
  clash[1].path = (d.path / "elsewhere" / "clip_000000.mp4").string();
  clash[0].path = (d.path / "other" / "clip_000000.mp4").string();
  o.base = "";
  EXPECT_THROW(extract_features(ex, clash, o), Error);
}

// The largest |a - b| over two tensors of the same shape.
double max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  const std::vector<float> x = a.to_vector<float>(), y = b.to_vector<float>();
  double m = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i)
    m = std::max(m, static_cast<double>(std::abs(x[i] - y[i])));
  return m;
}

// frames [n, 3, 32, 32] in [0, 1), a fixed pattern.
Tensor test_frames(int64_t n) {
  Generator g(5);
  return rand({n, 3, 32, 32}, &g);
}

// TSM: windows of seg_num consecutive frames go through the model together (the shift sees the
// neighbours), the last window is shorter, and the rows do not depend on how frames are batched.
TEST(Extract, TsmFeaturesAreWindowsOfConsecutiveFrames) {
  register_for_tests();
  TempDir d("video_extract_tsm");
  std::string yaml = kTsnYaml;
  yaml.replace(yaml.find("name: tsn"), 9, "name: tsm");
  LoadedModel tsm = make_checkpoint(yaml, d.path / "tsm", 1);
  FrameFeatureExtractor ex(tsm);
  EXPECT_EQ(ex.kind(), FrameFeatureExtractor::Kind::tsm);
  EXPECT_EQ(ex.window(), 3);  // data.infer.seg_num
  EXPECT_EQ(ex.feature_dim(), 128);
  const Tensor frames = test_frames(7);
  const Tensor got = ex.features(frames, 16);
  ASSERT_EQ(got.shape(), (Shape{7, 128}));
  auto* model = static_cast<Tsm*>(tsm.module.get());
  NoGradGuard no_grad;
  model->set_segments(3);
  const Tensor w0 = model->segment_features(frames.narrow(0, 0, 3).unsqueeze(0)).squeeze(0);
  const Tensor w1 = model->segment_features(frames.narrow(0, 3, 3).unsqueeze(0)).squeeze(0);
  model->set_segments(1);
  const Tensor w2 = model->segment_features(frames.narrow(0, 6, 1).unsqueeze(0)).squeeze(0);
  EXPECT_LT(max_abs_diff(got.narrow(0, 0, 3), w0), 1e-5);
  EXPECT_LT(max_abs_diff(got.narrow(0, 3, 3), w1), 1e-5);
  EXPECT_LT(max_abs_diff(got.narrow(0, 6, 1), w2), 1e-5);
  // Alone, frame 1 gives another feature: the shift mixed its neighbours in.
  const Tensor alone = model->segment_features(frames.narrow(0, 1, 1).unsqueeze(0)).squeeze(0);
  EXPECT_GT(max_abs_diff(got.narrow(0, 1, 1), alone), 1e-4);
  // batch_frames 4 becomes 3 (whole windows): the same rows.
  EXPECT_LT(max_abs_diff(ex.features(frames, 4), got), 1e-5);
  EXPECT_LT(max_abs_diff(ex.features(frames, 1), got), 1e-5);

  // Through extract_features with chunks of 4 frames (rounded up to 6): the rows of all the
  // selected frames at once.
  synth_clips(d.path / "clips", 1);
  const auto entries = readers::read_video_list(
      (d.path / "clips" / "train_appearance.list").string(), "", false, true);
  ExtractOptions o;
  o.out_dir = (d.path / "out").string();
  o.base = (d.path / "clips").string();
  o.chunk_frames = 4;
  o.batch_frames = 2;
  const ExtractResult r = extract_features(ex, entries, o);
  ASSERT_EQ(r.written, 1);
  readers::VideoDecoder dec(entries[0].path);
  std::vector<int64_t> all(16);
  for (int64_t i = 0; i < 16; ++i) all[static_cast<size_t>(i)] = i;
  Generator rng(0);
  const Tensor x = preprocess_clip(dec.decode(all), ex.preprocess(), 0, rng);
  const Tensor rows =
      readers::read_feature_file(readers::read_feature_list(r.list_file, "")[0]).get("rgb");
  EXPECT_LT(max_abs_diff(rows, ex.features(x, 16)), 1e-5);
}

// An image-registry ResNet: each frame on its own through the trunk and the global pool, after
// the config's per-image transforms.
TEST(Extract, ImageResNetFeaturesOfEachFrame) {
  register_for_tests();
  vision::register_components();
  TempDir d("video_extract_resnet");
  const std::string yaml = R"(
model: {name: resnet18, num_classes: 5, small_input: true}
task: {name: image_classification, num_classes: 5}
data:
  name: image_folder
  test:
    decode_size: [40, 48]
    transforms:
      - {name: center_crop, size: 32}
      - {name: normalize, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}
)";
  LoadedModel net = make_checkpoint(yaml, d.path / "resnet", 3);
  FrameFeatureExtractor ex(net);
  EXPECT_EQ(ex.kind(), FrameFeatureExtractor::Kind::image_resnet);
  EXPECT_EQ(ex.window(), 1);
  EXPECT_EQ(ex.feature_dim(), 512);
  EXPECT_EQ(ex.preprocess().mode, "test");
  EXPECT_EQ(ex.preprocess().decode.height, 40);
  EXPECT_EQ(ex.preprocess().decode.width, 48);

  synth_clips(d.path / "clips", 1);
  const auto entries = readers::read_video_list(
      (d.path / "clips" / "train_appearance.list").string(), "", false, true);
  readers::VideoDecoder dec(entries[0].path, ex.preprocess().decode);
  const std::vector<readers::VideoFrame> decoded = dec.decode({0, 5, 9});
  Generator rng(0);
  const Tensor x = preprocess_clip(decoded, ex.preprocess(), 0, rng);
  ASSERT_EQ(x.shape(), (Shape{3, 3, 32, 32}));
  // The transforms by hand: the central 32x32 of 40x48, (v / 255 - 0.5) / 0.25.
  const readers::VideoFrame& f = decoded[1];
  const int64_t y = 10, xx = 7, c = 2;
  const float want =
      (static_cast<float>(f.rgb[static_cast<size_t>(((4 + y) * 48 + 8 + xx) * 3 + c)]) / 255.0f -
       0.5f) /
      0.25f;
  EXPECT_NEAR(x.narrow(0, 1, 1)
                  .contiguous()
                  .to_vector<float>()[static_cast<size_t>((c * 32 + y) * 32 + xx)],
              want, 1e-5);
  const Tensor got = ex.features(x, 2);
  NoGradGuard no_grad;
  auto* model = static_cast<vision::ResNet*>(net.module.get());
  EXPECT_LT(max_abs_diff(got, model->pooled_features(x)), 1e-5);
  EXPECT_LT(max_abs_diff(got.narrow(0, 2, 1), model->pooled_features(x.narrow(0, 2, 1))), 1e-5);
  EXPECT_GT(max_abs_diff(got.narrow(0, 0, 1), got.narrow(0, 1, 1)), 1e-4);  // frames differ
}

TEST(Extract, ModelsWithoutAPerFrameFeatureAreRefused) {
  register_for_tests();
  TempDir d("video_extract_refused");
  LoadedModel lstm = make_checkpoint(lstm_yaml(8), d.path / "lstm", 1);
  try {
    FrameFeatureExtractor ex(lstm);
    FAIL() << "a sequence model accepted";
  } catch (const ConfigError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("model.name"), std::string::npos) << m;
    EXPECT_NE(m.find("tsn, tsm"), std::string::npos) << m;
  }
  EXPECT_THROW(load_model(lstm.config, (d.path / "missing").string()), Error);
}

TEST(Extract, InferenceDevice) {
  EXPECT_TRUE(inference_device("cpu").is_cpu());
  EXPECT_THROW(inference_device("gpu"), Error);
  if (!cuda_available()) {
    try {
      inference_device("cuda:0");
      FAIL() << "cuda:0 accepted without CUDA";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("--device cuda:0: no CUDA device is available"),
                std::string::npos)
          << e.what();
    }
  }
  try {
    inference_device("cuda:99");
    FAIL() << "cuda:99 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--device cuda:99"), std::string::npos) << e.what();
  }
}

}  // namespace
