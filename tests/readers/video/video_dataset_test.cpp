// The "video" reader end to end: lists of videos and of frame folders, TSN and dense sampling
// through the loader (frames checked by the index each one carries), multi-label targets,
// multi-view testing, decode-time scaling, and corrupt files under corrupt: fatal and skip.
#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>

#include "engine/config/error.h"
#include "engine/core/error.h"
#include "readers/registry.h"
#include "readers/video/video_dataset.h"
#include "tests/readers/video/video_fixtures.h"

using namespace oar;
using namespace oar::readers;
using namespace oar::test_video;

namespace {

std::shared_ptr<DataLoader> loader(const std::string& data_yaml, const std::string& mode,
                                   uint64_t seed = 7) {
  register_components();
  Config c = Config::from_string("data:\n  name: video\n  num_workers: 0\n" + data_yaml);
  return make_loader(c, mode, seed);
}

// The index carried by frame t of sample n in a [N, T, C, H, W] batch of unnormalised frames.
int64_t code_at(const Tensor& video, int64_t n, int64_t t) {
  const auto& s = video.shape();
  const int64_t T = s[1], C = s[2], H = s[3], W = s[4];
  const float* p = video.data<float>() + ((n * T + t) * C) * H * W;  // channel 0 (red)
  int64_t v = 0;
  for (int b = 0; b < 8; ++b)
    if (p[(H / 2) * W + (b * 16 + 8) * W / 128] > 0.5f) v |= int64_t{1} << b;
  return v;
}

std::vector<int64_t> meta_indices(const Batch& b, size_t n) {
  std::vector<int64_t> out;
  for (const Json& j : b.meta[n].at("frame_indices").as_array()) out.push_back(j.as_int());
  return out;
}

struct Videos {
  TempDir tmp;
  Videos() {
    make_video(tmp.path / "v" / "a.mp4", "-c:v libx264 -g 12 -bf 2 -pix_fmt yuv420p", 60);
    make_video(tmp.path / "v" / "b.avi", "-c:v mpeg4 -g 12 -q:v 2", 45);
    make_video(tmp.path / "v" / "c.webm",
               "-c:v libvpx-vp9 -g 10 -deadline realtime -cpu-used 8 -b:v 0 -crf 30", 30);
    write_text(tmp.path / "list.txt", "v/a.mp4 2\nv/b.avi 0\n# a comment\nv/c.webm 1\n");
  }
  std::string list() const { return (tmp.path / "list.txt").string(); }
};

TEST(VideoReader, TsnEvalDeliversCentredSegments) {
  OAR_NEED_FFMPEG();
  Videos v;
  auto l = loader("  batch_size: 3\n  valid: {list: " + v.list() + ", seg_num: 4}\n", "valid");
  l->start_epoch(0);
  Batch b;
  ASSERT_TRUE(l->next(b));
  EXPECT_EQ(b["video"].shape(), (std::vector<int64_t>{3, 4, 3, 32, 128}));
  EXPECT_EQ(b["label"].data<int64_t>()[0], 2);
  EXPECT_EQ(b["label"].data<int64_t>()[2], 1);
  // 60 frames / 4 = 15 per segment, centre offset 7; 45 / 4 = 11, offset 5; 30 / 4 = 7, offset 3.
  const std::vector<std::vector<int64_t>> want = {
      {7, 22, 37, 52}, {5, 16, 27, 38}, {3, 10, 17, 24}};
  for (size_t n = 0; n < 3; ++n) {
    EXPECT_EQ(meta_indices(b, n), want[n]);
    for (int64_t t = 0; t < 4; ++t) EXPECT_EQ(code_at(b["video"], n, t), want[n][t]) << n;
    EXPECT_EQ(b.meta[n].at("views").as_int(), 1);
  }
  EXPECT_NE(b.meta[1].at("path").as_string().find("b.avi"), std::string::npos);
}

TEST(VideoReader, TsnTrainRepeatsForASeedAndDeliversWhatItSampled) {
  OAR_NEED_FFMPEG();
  Videos v;
  const std::string yaml = "  batch_size: 3\n  train: {list: " + v.list() +
                           ", seg_num: 3, seglen: 2, seek: seek, decode_threads: 2}\n";
  std::vector<std::vector<int64_t>> first;
  for (int run = 0; run < 2; ++run) {
    auto l = loader(yaml, "train", 11);
    l->start_epoch(0);
    Batch b;
    ASSERT_TRUE(l->next(b));
    ASSERT_EQ(b["video"].shape(), (std::vector<int64_t>{3, 6, 3, 32, 128}));
    for (size_t n = 0; n < 3; ++n) {
      const auto idx = meta_indices(b, n);
      for (int64_t t = 0; t < 6; ++t) EXPECT_EQ(code_at(b["video"], n, t), idx[t]);
      for (int64_t s = 0; s < 3; ++s) EXPECT_EQ(idx[s * 2 + 1], idx[s * 2] + 1);
      if (run == 0)
        first.push_back(idx);
      else
        EXPECT_EQ(idx, first[n]) << "the same seed must pick the same frames";
    }
  }
}

TEST(VideoReader, DenseMultiViewWithCropsAndDecodeSize) {
  OAR_NEED_FFMPEG();
  Videos v;
  auto l = loader("  batch_size: 2\n  test:\n    list: " + v.list() +
                      "\n    clip_len: 4\n    frame_interval: 2\n"
                      "    num_clips: 2\n    decode_size: [32, 64]\n"
                      "    transforms:\n      - {name: group_three_crop, size: 32}\n"
                      "      - {name: group_normalize}\n",
                  "test");
  l->start_epoch(0);
  Batch b;
  ASSERT_TRUE(l->next(b));
  // 2 temporal clips x 3 crops = 6 views of 4 frames.
  EXPECT_EQ(b["video"].shape(), (std::vector<int64_t>{2, 6, 4, 3, 32, 32}));
  EXPECT_EQ(b.meta[0].at("views").as_int(), 6);
  // 60 frames, span 8: bins of 26.5, starts int(13.25) = 13 and int(39.75) = 39.
  EXPECT_EQ(meta_indices(b, 0), (std::vector<int64_t>{13, 15, 17, 19, 39, 41, 43, 45}));
}

TEST(VideoReader, DecodeSizeKeepsFramesAccurate) {
  OAR_NEED_FFMPEG();
  Videos v;
  auto l = loader(
      "  batch_size: 3\n  valid: {list: " + v.list() + ", seg_num: 5, decode_size: 16}\n", "valid");
  l->start_epoch(0);
  Batch b;
  ASSERT_TRUE(l->next(b));
  ASSERT_EQ(b["video"].shape(), (std::vector<int64_t>{3, 5, 3, 16, 64}));
  for (size_t n = 0; n < 3; ++n) {
    const auto idx = meta_indices(b, n);
    for (int64_t t = 0; t < 5; ++t) EXPECT_EQ(code_at(b["video"], n, t), idx[t]);
  }
}

TEST(VideoReader, FrameFoldersAndMultiLabel) {
  TempDir tmp;
  // Two folders of bar-coded JPEG frames, MMAction2 style: img_00001.jpg is frame 0.
  for (const auto& [dir, n] : std::vector<std::pair<std::string, int>>{{"x", 20}, {"y", 9}}) {
    std::filesystem::create_directories(tmp.path / dir);
    for (int i = 0; i < n; ++i) {
      cv::Mat m(32, 128, CV_8UC3, cv::Scalar(0, 0, 0));
      for (int bit = 0; bit < 8; ++bit)
        if ((i >> bit) & 1) m(cv::Rect(bit * 16, 0, 16, 32)).setTo(cv::Scalar(255, 255, 255));
      ASSERT_TRUE(
          cv::imwrite((tmp.path / dir / frame_file_name("img_{:05d}.jpg", i + 1)).string(), m));
    }
  }
  write_text(tmp.path / "frames.txt", "x 20 1,3\ny 9 0\n");
  auto l = loader("  batch_size: 2\n  valid: {list: " + (tmp.path / "frames.txt").string() +
                      ", format: frames, multi_label: true, num_classes: 5, seg_num: 4}\n",
                  "valid");
  l->start_epoch(0);
  Batch b;
  ASSERT_TRUE(l->next(b));
  ASSERT_EQ(b["video"].shape(), (std::vector<int64_t>{2, 4, 3, 32, 128}));
  const std::vector<std::vector<int64_t>> want = {{2, 7, 12, 17}, {0, 2, 4, 6}};
  for (size_t n = 0; n < 2; ++n)
    for (int64_t t = 0; t < 4; ++t) EXPECT_EQ(code_at(b["video"], n, t), want[n][t]);
  ASSERT_EQ(b["label"].shape(), (std::vector<int64_t>{2, 5}));
  const float* lab = b["label"].data<float>();
  EXPECT_EQ(std::vector<float>(lab, lab + 10), (std::vector<float>{0, 1, 0, 1, 0, 1, 0, 0, 0, 0}));
  // A missing frame file is an error naming it.
  write_text(tmp.path / "short.txt", "y 30 0\n");
  auto bad = loader("  batch_size: 1\n  valid: {list: " + (tmp.path / "short.txt").string() +
                        ", format: frames, seg_num: 4}\n",
                    "valid");
  bad->start_epoch(0);
  try {
    bad->next(b);
    ADD_FAILURE() << "no error for missing frames";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("img_000"), std::string::npos) << e.what();
  }
}

TEST(VideoReader, CorruptFilesFatalOrSkipped) {
  OAR_NEED_FFMPEG();
  TempDir tmp;
  make_video(tmp.path / "good.mp4", "-c:v libx264 -g 12 -pix_fmt yuv420p", 40);
  truncate_copy(tmp.path / "good.mp4", tmp.path / "cut.mp4", 0.5);
  write_text(tmp.path / "text.mp4", "not a video at all\n");
  write_text(tmp.path / "list.txt", "cut.mp4 0\ntext.mp4 1\ngood.mp4 2\n");
  const std::string list = (tmp.path / "list.txt").string();
  for (int i = 0; i < 2; ++i) {
    const std::string bad = i == 0 ? "cut.mp4" : "text.mp4";
    write_text(tmp.path / "one.txt", bad + " 0\ngood.mp4 1\n");
    auto l = loader("  batch_size: 2\n  valid: {list: " + (tmp.path / "one.txt").string() + "}\n",
                    "valid");
    l->start_epoch(0);
    Batch b;
    try {
      l->next(b);
      ADD_FAILURE() << bad << ": no error under corrupt: fatal";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find((tmp.path / bad).string()), std::string::npos)
          << e.what();
    }
  }
  auto l = loader("  batch_size: 3\n  valid: {list: " + list + ", corrupt: skip, seg_num: 2}\n",
                  "valid");
  l->start_epoch(0);
  Batch b;
  ASSERT_TRUE(l->next(b));
  ASSERT_EQ(b.size, 3);
  for (size_t n = 0; n < 3; ++n) {
    EXPECT_NE(b.meta[n].at("path").as_string().find("good.mp4"), std::string::npos);
    EXPECT_EQ(b["label"].data<int64_t>()[n], 2);
  }
  EXPECT_NE(b.meta[0].at("skipped").as_string().find("cut.mp4"), std::string::npos);
  EXPECT_NE(b.meta[1].at("error").as_string().find("text.mp4"), std::string::npos);
  EXPECT_FALSE(b.meta[2].contains("skipped"));
}

TEST(VideoReader, PredictionInputsAndListErrors) {
  OAR_NEED_FFMPEG();
  Videos v;
  // A folder of videos: unlabeled samples, sorted.
  auto l =
      loader("  batch_size: 3\n  infer: {list: " + (v.tmp.path / "v").string() + "}\n", "infer");
  l->start_epoch(0);
  Batch b;
  ASSERT_TRUE(l->next(b));
  EXPECT_EQ(b.tensors.count("label"), 0u);
  EXPECT_NE(b.meta[2].at("path").as_string().find("c.webm"), std::string::npos);
  EXPECT_EQ(resolve_video_input((v.tmp.path / "v" / "a.mp4").string(), false, false).size(), 1u);

  write_text(v.tmp.path / "multi.txt", "v/a.mp4 1,2\n");
  EXPECT_THROW(read_video_list((v.tmp.path / "multi.txt").string(), "", false, false), Error);
  EXPECT_EQ(read_video_list((v.tmp.path / "multi.txt").string(), "", false, true)[0].labels,
            (std::vector<int64_t>{1, 2}));
  write_text(v.tmp.path / "mixed.txt", "v/a.mp4 1\nv/b.avi\n");
  EXPECT_THROW(read_video_list((v.tmp.path / "mixed.txt").string(), "", false, false), Error);
  write_text(v.tmp.path / "frames.txt", "dir_without_count\n");
  EXPECT_THROW(read_video_list((v.tmp.path / "frames.txt").string(), "", true, false), Error);
  EXPECT_THROW(loader("  valid: {list: " + v.list() + ", multi_label: true}\n", "valid"),
               ConfigError);
  EXPECT_THROW(loader("  valid: {list: " + v.list() + ", filename_tmpl: img.jpg}\n", "valid"),
               ConfigError);
  EXPECT_THROW(loader("  valid: {list: " + v.list() + ", seg_nm: 3}\n", "valid"), ConfigError);
  // TSN keys with dense sampling (and the reverse) are errors, not silently ignored.
  EXPECT_THROW(loader("  valid: {list: " + v.list() + ", sampling: tsn, num_clips: 3}\n", "valid"),
               ConfigError);
  EXPECT_THROW(loader("  seg_num: 4\n  valid: {list: " + v.list() + ", clip_len: 4}\n", "valid"),
               ConfigError);
  EXPECT_THROW(loader("  valid: {list: " + v.list() + ", sampling: dense, seglen: 2}\n", "valid"),
               ConfigError);
  EXPECT_THROW(loader("  valid: {list: " + v.list() + ", seg_num: 0}\n", "valid"), ConfigError);
  EXPECT_THROW(loader("  valid: {list: " + v.list() + ", corrupt: ignore}\n", "valid"),
               ConfigError);
}

TEST(VideoReader, FrameFileNames) {
  EXPECT_EQ(frame_file_name("img_{:05d}.jpg", 7), "img_00007.jpg");
  EXPECT_EQ(frame_file_name("{}.png", 12), "12.png");
  EXPECT_EQ(frame_file_name("f%06d.jpg", 3), "f000003.jpg");
  EXPECT_THROW(frame_file_name("img.jpg", 1), Error);
  EXPECT_THROW(frame_file_name("{}_{}.jpg", 1), Error);
  EXPECT_THROW(frame_file_name("{:s}.jpg", 1), Error);
}

}  // namespace
