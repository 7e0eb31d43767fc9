// FFmpeg decoding on videos whose frames carry their own index: every container/codec pair the
// readers promise, variable frame rate, both seek strategies, scaling, rotation, exact frame
// counts, and corrupt or truncated files.
#include <gtest/gtest.h>

#include <cstring>

#include "engine/core/error.h"
#include "readers/video/decoder.h"
#include "tests/readers/video/video_fixtures.h"

using namespace oar;
using namespace oar::readers;
using namespace oar::test_video;

namespace {

struct Format {
  const char* file;
  const char* codec_args;
  const char* codec;
  const char* filter;  // extra filter (variable frame rate)
};

// GOP 12 with B-frames where the codec has them, so seeking and reordering both matter.
const Format kFormats[] = {
    {"h264.mp4", "-c:v libx264 -g 12 -bf 2 -pix_fmt yuv420p", "h264", ""},
    {"mpeg4.avi", "-c:v mpeg4 -g 12 -q:v 2", "mpeg4", ""},
    // AVI keeps decode order only: with B-frames most packets have no presentation time, and
    // the decoder's guessed timestamps are one frame late (issue #6). Xvid/DivX-tagged too.
    {"mpeg4_bf.avi", "-c:v mpeg4 -g 12 -bf 2 -q:v 2", "mpeg4", ""},
    {"xvid_bf.avi", "-c:v mpeg4 -g 12 -bf 2 -q:v 2 -vtag XVID", "mpeg4", ""},
    {"divx_bf.avi", "-c:v mpeg4 -g 12 -bf 2 -q:v 2 -vtag DX50", "mpeg4", ""},
    {"h264.mkv", "-c:v libx264 -g 12 -bf 2 -pix_fmt yuv420p", "h264", ""},
    {"vp9.webm", "-c:v libvpx-vp9 -g 12 -deadline realtime -cpu-used 8 -b:v 0 -crf 30", "vp9", ""},
    // Irregular timestamps: gaps grow quadratically, so pts * fps is not the frame index.
    {"vfr.mp4",
     "-fps_mode passthrough -enc_time_base:v 1/1000 -c:v libx264 -g 12 -bf 2 -pix_fmt yuv420p",
     "h264", "settb=1/1000,setpts='(N*0.02+N*N*0.0006)/TB'"},
    {"vfr.mkv", "-fps_mode passthrough -enc_time_base:v 1/1000 -c:v libx264 -g 12 -pix_fmt yuv420p",
     "h264", "settb=1/1000,setpts='(N*0.04+N*N*0.0004)/TB'"},
};

class DecoderFormats : public ::testing::TestWithParam<Format> {};

void expect_frames(VideoDecoder& d, const std::vector<int64_t>& want, const std::string& what) {
  const auto frames = d.decode(want);
  ASSERT_EQ(frames.size(), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(frames[i].index, want[i]) << what << " #" << i;
    EXPECT_EQ(read_code(frames[i]), want[i]) << what << " #" << i;
    EXPECT_EQ(frames[i].height, 32);
    EXPECT_EQ(frames[i].width, 128);
  }
}

TEST_P(DecoderFormats, FramesAreTheIndicesAskedFor) {
  OAR_NEED_FFMPEG();
  const Format f = GetParam();
  TempDir tmp;
  const auto path = tmp.path / f.file;
  make_video(path, f.codec_args, 60, 25, f.filter);
  const std::vector<std::vector<int64_t>> asks = {
      {0, 1, 2},
      {7, 30, 31, 59},
      {45, 3, 13, 13, 27, 58},  // unsorted with a duplicate: returned in the order asked
      {59},
      {11, 12, 23, 24, 35, 36},  // around keyframes
  };
  for (SeekMode mode : {SeekMode::seek, SeekMode::sequential, SeekMode::automatic}) {
    DecodeOptions o;
    o.mode = mode;
    VideoDecoder d(path.string(), o);
    EXPECT_EQ(d.num_frames(), 60);
    EXPECT_EQ(d.info().codec, f.codec);
    for (const auto& ask : asks) expect_frames(d, ask, std::string(f.file));
    if (mode == SeekMode::sequential) {
      EXPECT_EQ(d.seeks(), 0) << f.file;
    } else if (mode == SeekMode::seek) {
      EXPECT_GT(d.seeks(), 0) << f.file;
    }
  }
  // A fresh decoder per ask, as the dataset uses them; with frame threads, and with every frame
  // decoded (no skipping of unwanted non-reference frames).
  for (const auto& ask : asks)
    for (int threads : {1, 2})
      for (bool skip : {true, false}) {
        DecodeOptions o;
        o.threads = threads;
        o.skip_unwanted = skip;
        VideoDecoder d(path.string(), o);
        expect_frames(d, ask,
                      std::string(f.file) + " fresh, threads " + std::to_string(threads) +
                          (skip ? "" : ", no skipping"));
      }
  VideoDecoder d(path.string());
  EXPECT_EQ(d.count_decoded_frames(), 60);
  std::vector<int64_t> all(60);
  for (int64_t i = 0; i < 60; ++i) all[i] = i;
  expect_frames(d, all, std::string(f.file) + " all");
}

INSTANTIATE_TEST_SUITE_P(Containers, DecoderFormats, ::testing::ValuesIn(kFormats),
                         [](const auto& info) {
                           std::string n = info.param.file;
                           for (char& c : n)
                             if (c == '.') c = '_';
                           return n;
                         });

TEST(Decoder, VariableFrameRateIsIndexedByPresentationOrder) {
  OAR_NEED_FFMPEG();
  TempDir tmp;
  const auto path = tmp.path / "vfr.mp4";
  make_video(path,
             "-fps_mode passthrough -enc_time_base:v 1/1000 -c:v libx264 -g 12 -pix_fmt yuv420p",
             60, 25, "settb=1/1000,setpts='(N*0.02+N*N*0.0006)/TB'");
  VideoDecoder d(path.string());
  const auto frames = d.decode({10, 50});
  // The time of frame n is 0.02 n + 0.0006 n^2 (to the container's clock), far from n / fps.
  EXPECT_NEAR(frames[0].time, 0.02 * 10 + 0.0006 * 100, 2e-3);
  EXPECT_NEAR(frames[1].time, 0.02 * 50 + 0.0006 * 2500, 2e-3);
  const double fps = d.info().fps;
  // Frame 10 sits near 5 / fps: indexing by time * fps would fetch frame 5.
  EXPECT_GT(std::abs(frames[0].time * fps - 10.0), 3.0) << "the file is not variable-rate";
  EXPECT_EQ(read_code(frames[0]), 10);
  EXPECT_EQ(read_code(frames[1]), 50);
}

TEST(Decoder, SeekStrategyDecodesOnlyWhatIsNeeded) {
  OAR_NEED_FFMPEG();
  TempDir tmp;
  const auto path = tmp.path / "long.mp4";
  make_video(path, "-c:v libx264 -g 10 -bf 0 -pix_fmt yuv420p", 200);
  {
    DecodeOptions o;  // automatic: far-apart frames are sought
    VideoDecoder d(path.string(), o);
    expect_frames(d, {15, 95, 185}, "sparse");
    EXPECT_EQ(d.seeks(), 3);
    // From the keyframes 10, 90 and 180: 6 frames each (plus any the container lands early).
    EXPECT_LE(d.frames_decoded(), 40);
  }
  {
    VideoDecoder d(path.string());  // dense frames: one pass, no seek
    std::vector<int64_t> dense;
    for (int64_t i = 0; i < 200; i += 3) dense.push_back(i);
    expect_frames(d, dense, "dense");
    EXPECT_EQ(d.seeks(), 0);
    EXPECT_EQ(d.frames_decoded(), 199);  // up to the last wanted frame, 198
  }
  {
    DecodeOptions o;
    o.threads = 3;
    o.mode = SeekMode::seek;
    VideoDecoder d(path.string(), o);
    expect_frames(d, {199, 0, 100, 101, 150}, "threads");
  }
}

// A long GOP with B-frames (x264's pyramid: 2 of every 3 B-frames are not references): the
// frames between wanted ones that nothing refers to are never decoded, and the wanted ones are
// still exact, with one and with two frame threads.
TEST(Decoder, SkipsUnwantedNonReferenceFrames) {
  OAR_NEED_FFMPEG();
  TempDir tmp;
  const auto path = tmp.path / "gop250.mp4";
  make_video(path,
             "-c:v libx264 -g 250 -sc_threshold 0 -bf 3 -b-pyramid normal -x264-params b-adapt=0 "
             "-pix_fmt yuv420p",
             200);
  const std::vector<int64_t> want = {12, 37, 62, 87, 112, 137, 162, 187};  // TSN's 8 centres
  for (int threads : {1, 2}) {
    DecodeOptions all;
    all.threads = threads;
    all.skip_unwanted = false;
    VideoDecoder full(path.string(), all);
    expect_frames(full, want, "every frame, threads " + std::to_string(threads));
    EXPECT_EQ(full.seeks(), 0);
    EXPECT_EQ(full.frames_skipped(), 0);
    EXPECT_GE(full.frames_decoded(), 188);

    DecodeOptions o;
    o.threads = threads;
    VideoDecoder d(path.string(), o);
    expect_frames(d, want, "skipping, threads " + std::to_string(threads));
    // Every packet up to frame 187 but the 8 wanted, and the few after it the codec's reordering
    // delay reads ahead.
    EXPECT_GE(d.frames_skipped(), 188 - 8);
    EXPECT_LE(d.frames_skipped(), 188 - 8 + 8);
    // About half the frames are B-frames nobody refers to.
    EXPECT_LT(d.frames_decoded(), full.frames_decoded() * 3 / 4) << "threads " << threads;
    EXPECT_GT(d.frames_decoded(), full.frames_decoded() / 4) << "threads " << threads;
    expect_frames(d, {186, 3, 188}, "again, threads " + std::to_string(threads));
  }
}

// AVI with B-frames (issue #6): the container keeps decode order and most packets have no
// presentation time, so frames are counted; seeking still goes to the keyframe before a wanted
// frame (placed in presentation order from the VOP types) instead of decoding from the start,
// and the frame times are the slots' own.
TEST(Decoder, AviWithBFramesSeeksAndCounts) {
  OAR_NEED_FFMPEG();
  TempDir tmp;
  const auto path = tmp.path / "xvid.avi";
  make_video(path, "-c:v mpeg4 -g 12 -bf 2 -q:v 2 -vtag XVID", 200);
  for (int threads : {1, 2}) {
    DecodeOptions o;
    o.threads = threads;
    o.mode = SeekMode::seek;
    VideoDecoder d(path.string(), o);
    EXPECT_EQ(d.num_frames(), 200);
    const auto f = d.decode({150, 37});
    EXPECT_EQ(read_code(f[0]), 150);
    EXPECT_EQ(read_code(f[1]), 37);
    EXPECT_NEAR(f[0].time, 150 / 25.0, 1e-6);
    EXPECT_NEAR(f[1].time, 37 / 25.0, 1e-6);
    EXPECT_EQ(d.seeks(), 2);
    // From the keyframes before 37 and 150 (GOPs of 12): far fewer than the 151 from the start.
    EXPECT_LE(d.frames_decoded(), 2 * 14) << "threads " << threads;
    expect_frames(d, {199, 0, 198, 12, 11}, "avi again, threads " + std::to_string(threads));
  }
  const VideoInfo info = probe_video(path.string());
  EXPECT_EQ(info.frames, 200);
  EXPECT_EQ(info.header_frames, 200);
  EXPECT_NEAR(info.fps, 25.0, 1e-6);
}

TEST(Decoder, ScalesStraightToTheTargetSize) {
  OAR_NEED_FFMPEG();
  TempDir tmp;
  const auto path = tmp.path / "a.mp4";
  make_video(path, "-c:v libx264 -g 12 -pix_fmt yuv420p", 30);
  DecodeOptions o;
  o.height = 48;
  o.width = 256;
  VideoDecoder d(path.string(), o);
  auto f = d.decode({21});
  EXPECT_EQ(f[0].height, 48);
  EXPECT_EQ(f[0].width, 256);
  EXPECT_EQ(f[0].rgb.size(), 48u * 256 * 3);
  EXPECT_EQ(read_code(f[0]), 21);
  DecodeOptions s;
  s.short_side = 64;
  VideoDecoder d2(path.string(), s);
  f = d2.decode({22});
  EXPECT_EQ(f[0].height, 64);
  EXPECT_EQ(f[0].width, 256);
  EXPECT_EQ(read_code(f[0]), 22);
}

TEST(Decoder, RotationFromTheDisplayMatrix) {
  OAR_NEED_FFMPEG();
  TempDir tmp;
  const auto plain = tmp.path / "plain.mp4", rotated = tmp.path / "rotated.mp4";
  make_video(plain, "-c:v libx264 -pix_fmt yuv420p", 10);
  ASSERT_TRUE(
      ffmpeg("-i " + plain.string() + " -c copy -metadata:s:v:0 rotate=90 " + rotated.string()));
  VideoDecoder d(rotated.string());
  // The ffmpeg tool shows this file turned a quarter anticlockwise: 270 degrees clockwise.
  EXPECT_EQ(d.info().rotation, 270);
  auto f = d.decode({5});  // bit 0 and 2 set: bars 0 and 2 white
  ASSERT_EQ(f[0].height, 128);
  ASSERT_EQ(f[0].width, 32);
  // Compare with what the ffmpeg tool renders (it applies the display matrix too).
  const auto raw = tmp.path / "f5.rgb";
  ASSERT_TRUE(ffmpeg("-i " + rotated.string() +
                     " -vf 'select=eq(n\\,5)' -frames:v 1 -pix_fmt rgb24 -f rawvideo " +
                     raw.string()));
  std::ifstream in(raw, std::ios::binary);
  std::string ref((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_EQ(ref.size(), f[0].rgb.size());
  for (int64_t y = 8; y < 128; y += 16)  // bar centres agree
    EXPECT_EQ(f[0].rgb[(y * 32 + 16) * 3] > 128,
              static_cast<uint8_t>(ref[static_cast<size_t>((y * 32 + 16) * 3)]) > 128)
        << "row " << y;
  DecodeOptions keep;
  keep.apply_rotation = false;
  VideoDecoder d2(rotated.string(), keep);
  f = d2.decode({5});
  EXPECT_EQ(f[0].width, 128);
  EXPECT_EQ(read_code(f[0]), 5);
}

TEST(Decoder, ExactCountWhenTheHeaderLies) {
  OAR_NEED_FFMPEG();
  TempDir tmp;
  const auto path = tmp.path / "lies.avi";
  make_video(path, "-c:v mpeg4 -g 12 -q:v 2", 40);
  // Overwrite the stream header's dwLength (the frame count libavformat reports) with 999.
  std::fstream io(path, std::ios::in | std::ios::out | std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(io)), std::istreambuf_iterator<char>());
  const size_t strh = data.find("strh");
  ASSERT_NE(strh, std::string::npos);
  const uint32_t lie = 999;
  io.seekp(static_cast<std::streamoff>(strh + 8 + 32));
  io.write(reinterpret_cast<const char*>(&lie), 4);
  io.close();
  const VideoInfo info = probe_video(path.string());
  EXPECT_EQ(info.header_frames, 999);
  EXPECT_EQ(info.frames, 40);
  VideoDecoder d(path.string());
  EXPECT_EQ(d.num_frames(), 40);
  expect_frames(d, {39, 2}, "lying header");
}

TEST(Decoder, ProbeReportsTheStream) {
  OAR_NEED_FFMPEG();
  TempDir tmp;
  const auto mp4 = tmp.path / "a.mp4", webm = tmp.path / "a.webm";
  make_video(mp4, "-c:v libx264 -g 12 -pix_fmt yuv420p", 50, 25);
  make_video(webm, "-c:v libvpx-vp9 -deadline realtime -cpu-used 8 -b:v 0 -crf 30", 30, 15);
  VideoInfo i = probe_video(mp4.string());
  EXPECT_NE(i.container.find("mp4"), std::string::npos);
  EXPECT_EQ(i.codec, "h264");
  EXPECT_EQ(i.width, 128);
  EXPECT_EQ(i.height, 32);
  EXPECT_EQ(i.frames, 50);
  EXPECT_EQ(i.header_frames, 50);
  EXPECT_NEAR(i.fps, 25.0, 1e-6);
  EXPECT_NEAR(i.duration, 2.0, 0.05);
  EXPECT_EQ(i.rotation, 0);
  i = probe_video(webm.string());
  EXPECT_EQ(i.container, "matroska,webm");
  EXPECT_EQ(i.codec, "vp9");
  EXPECT_EQ(i.frames, 30);
  EXPECT_EQ(i.header_frames, 0);  // webm keeps no frame count: counted
  EXPECT_NEAR(i.fps, 15.0, 1e-6);
  EXPECT_NEAR(i.duration, 2.0, 0.1);
}

void expect_error_naming(const std::string& path, const std::string& what) {
  try {
    VideoDecoder d(path);
    std::vector<int64_t> all;
    for (int64_t i = 0; i < d.num_frames(); ++i) all.push_back(i);
    d.decode(all);
    ADD_FAILURE() << what << ": no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path, 0), 0u) << what << ": " << e.what();
  }
}

TEST(Decoder, CorruptFilesAreErrorsNamingTheFile) {
  OAR_NEED_FFMPEG();
  TempDir tmp;
  const auto good = tmp.path / "good.mp4";
  make_video(good, "-c:v libx264 -g 12 -pix_fmt yuv420p", 60);
  const auto half = tmp.path / "half.mp4";  // the index (moov) is at the end: cut off
  truncate_copy(good, half, 0.5);
  expect_error_naming(half.string(), "truncated mp4");
  const auto text = tmp.path / "notes.mp4";
  write_text(text, "this is a text file, not a video\n");
  expect_error_naming(text.string(), "text renamed .mp4");
  const auto empty = tmp.path / "empty.mkv";
  write_text(empty, "");
  expect_error_naming(empty.string(), "empty file");
  expect_error_naming((tmp.path / "missing.mp4").string(), "missing file");
  std::filesystem::create_directories(tmp.path / "dir.mp4");
  expect_error_naming((tmp.path / "dir.mp4").string(), "a folder");
  // Index first, data cut: the frames that exist decode; asking for more is an error.
  const auto fast = tmp.path / "fast.mp4", fast_half = tmp.path / "fast_half.mp4";
  ASSERT_TRUE(ffmpeg("-i " + good.string() + " -c copy -movflags +faststart " + fast.string()));
  truncate_copy(fast, fast_half, 0.6);
  try {
    VideoDecoder d(fast_half.string());
    const auto f = d.decode({0, 5});
    EXPECT_EQ(read_code(f[1]), 5);
    d.decode({d.num_frames() - 1});
    ADD_FAILURE() << "the last frame of a truncated file decoded";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind(fast_half.string(), 0), 0u) << e.what();
  }
  // Garbage in the middle of a stream: an error or the right frames, never a crash.
  const auto avi = tmp.path / "a.avi", bad = tmp.path / "bad.avi";
  make_video(avi, "-c:v mpeg4 -g 12 -q:v 2", 60);
  {
    std::ifstream in(avi, std::ios::binary);
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (size_t i = data.size() / 3; i < data.size() / 2; i += 7) data[i] = static_cast<char>(i);
    std::ofstream(bad, std::ios::binary)
        .write(data.data(), static_cast<std::streamsize>(data.size()));
  }
  try {
    VideoDecoder d(bad.string());
    std::vector<int64_t> all;
    for (int64_t i = 0; i < d.num_frames(); ++i) all.push_back(i);
    const auto f = d.decode(all);
    EXPECT_EQ(read_code(f[0]), 0);
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind(bad.string(), 0), 0u) << e.what();
  }
}

TEST(Decoder, OutOfRangeIndexIsAnError) {
  OAR_NEED_FFMPEG();
  TempDir tmp;
  const auto path = tmp.path / "a.mkv";
  make_video(path, "-c:v libx264 -pix_fmt yuv420p", 10);
  VideoDecoder d(path.string());
  EXPECT_THROW(d.decode({10}), Error);
  EXPECT_THROW(d.decode({-1}), Error);
  EXPECT_TRUE(d.decode({}).empty());
}

TEST(Decoder, VideoExtensions) {
  EXPECT_TRUE(is_video_file("a/b.MP4"));
  EXPECT_TRUE(is_video_file("x.webm"));
  EXPECT_FALSE(is_video_file("x.jpg"));
  EXPECT_FALSE(is_video_file("list.txt"));
}

}  // namespace
