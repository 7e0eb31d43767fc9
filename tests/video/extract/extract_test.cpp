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

TEST(Extract, OnlyTsnGivesPerFrameFeatures) {
  register_for_tests();
  TempDir d("video_extract_tsm");
  std::string yaml = kTsnYaml;
  yaml.replace(yaml.find("name: tsn"), 9, "name: tsm");
  LoadedModel tsm = make_checkpoint(yaml, d.path / "tsm", 1);
  try {
    FrameFeatureExtractor ex(tsm);
    FAIL() << "TSM accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("mixes frames"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_model(tsm.config, (d.path / "missing").string()), Error);
}

}  // namespace
