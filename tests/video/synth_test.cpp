// `oar video synth`: clips render the promised motion, a clip reversed is exactly a clip of the
// opposite direction, files decode (through the ffmpeg CLI) to the frames and size asked for,
// and output is deterministic for a seed.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/core/error.h"
#include "video/synth/synth.h"

namespace fs = std::filesystem;
using namespace oar;
using namespace oar::video::synth;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("oar_synth_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

// Every frame of a video as RGB bytes, decoded by the ffmpeg CLI (an independent decoder path).
std::string decode_rgb(const fs::path& file) {
  return run("ffmpeg -v error -i '" + file.string() + "' -f rawvideo -pix_fmt rgb24 -");
}

std::string probe(const fs::path& file, const std::string& entry) {
  std::string s = run("ffprobe -v error -select_streams v:0 -show_entries stream=" + entry +
                      " -of default=nw=1:nk=1 '" + file.string() + "'");
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// x of the centroid of pixels brighter than the background, per frame.
std::vector<double> centroid_x(const uint8_t* rgb, int frames, int w, int h) {
  std::vector<double> xs;
  for (int t = 0; t < frames; ++t) {
    const uint8_t* f = rgb + static_cast<size_t>(t) * w * h * 3;
    double sx = 0, n = 0;
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        const uint8_t* px = f + (static_cast<size_t>(y) * w + x) * 3;
        if (px[0] + px[1] + px[2] > 3 * 115) {
          sx += x;
          n += 1;
        }
      }
    xs.push_back(n > 0 ? sx / n : -1);
  }
  return xs;
}

// Area of bright pixels per frame.
std::vector<double> bright_area(const std::vector<uint8_t>& rgb, int frames, int w, int h) {
  std::vector<double> a;
  for (int t = 0; t < frames; ++t) {
    const uint8_t* f = rgb.data() + static_cast<size_t>(t) * w * h * 3;
    double n = 0;
    for (int i = 0; i < w * h; ++i) n += (f[3 * i] + f[3 * i + 1] + f[3 * i + 2] > 3 * 115);
    a.push_back(n);
  }
  return a;
}

SynthOptions small(const fs::path& dir) {
  SynthOptions o;
  o.out_dir = dir.string();
  o.train = 4;
  o.valid = 2;
  o.test = 0;
  o.frames = 12;
  o.width = 32;
  o.height = 32;
  o.seed = 7;
  o.num_shapes = 2;
  return o;
}

}  // namespace

TEST(Synth, ReversedClipIsExactlyTheOppositeDirection) {
  // The span of a motion is drawn before the direction is looked at: the same generator state
  // gives, for direction 1, the direction-0 clip played backwards. So the distribution of frame
  // sets is the same for both directions.
  for (Motion m : {Motion::translate, Motion::scale, Motion::rotate}) {
    for (uint64_t seed = 0; seed < 20; ++seed) {
      Generator g0(seed), g1(seed);
      ClipParams a = sample_clip(static_cast<int>(seed % 8), m, 0, 48, 40, 0.0, g0);
      ClipParams b = sample_clip(static_cast<int>(seed % 8), m, 1, 48, 40, 0.0, g1);
      ClipParams ar = reversed(a);
      EXPECT_EQ(ar.direction, b.direction);
      EXPECT_DOUBLE_EQ(ar.cx0, b.cx0);
      EXPECT_DOUBLE_EQ(ar.cx1, b.cx1);
      EXPECT_DOUBLE_EQ(ar.r0, b.r0);
      EXPECT_DOUBLE_EQ(ar.r1, b.r1);
      EXPECT_DOUBLE_EQ(ar.a0, b.a0);
      EXPECT_DOUBLE_EQ(ar.a1, b.a1);
      // and the rendered frames are the reversed frames, pixel for pixel (noise off)
      const int T = 6, W = 48, H = 40;
      const std::vector<uint8_t> fa = render_clip(a, T, W, H), fb = render_clip(b, T, W, H);
      const size_t plane = static_cast<size_t>(W) * H * 3;
      for (int t = 0; t < T; ++t)
        ASSERT_EQ(0, std::memcmp(fa.data() + plane * t, fb.data() + plane * (T - 1 - t), plane))
            << motion_name(m) << " seed " << seed << " frame " << t;
    }
  }
}

TEST(Synth, FrameSetStatisticsDoNotRevealDirection) {
  // Over many clips, the mean and spread of the shape's x over all frames is the same for left
  // and right clips (the order of frames is the only difference).
  const int T = 8, W = 64, H = 64;
  double sum[2] = {0, 0}, sq[2] = {0, 0}, n[2] = {0, 0};
  for (int d = 0; d < 2; ++d)
    for (uint64_t k = 0; k < 300; ++k) {
      Generator g(1000 + k + 100000 * static_cast<uint64_t>(d));
      ClipParams p = sample_clip(0, Motion::translate, d, W, H, 0.0, g);
      for (int t = 0; t < T; ++t) {
        const double x = p.cx0 + (p.cx1 - p.cx0) * t / (T - 1);
        sum[d] += x;
        sq[d] += x * x;
        n[d] += 1;
      }
    }
  const double m0 = sum[0] / n[0], m1 = sum[1] / n[1];
  const double s0 = std::sqrt(sq[0] / n[0] - m0 * m0), s1 = std::sqrt(sq[1] / n[1] - m1 * m1);
  EXPECT_NEAR(m0, m1, 1.0);  // pixels, of a 64-pixel frame
  EXPECT_NEAR(s0, s1, 1.0);
  EXPECT_NEAR(m0, W / 2.0, 1.5);  // and centred: position says nothing
}

TEST(Synth, RenderedMotionGoesTheLabelledWay) {
  const int T = 10, W = 64, H = 48;
  for (int d = 0; d < 2; ++d) {
    Generator g(3 + d);
    ClipParams p = sample_clip(1, Motion::translate, d, W, H, 6.0, g);
    const std::vector<uint8_t> f = render_clip(p, T, W, H);
    const std::vector<double> xs = centroid_x(f.data(), T, W, H);
    for (int t = 1; t < T; ++t) {
      if (d == 0)
        EXPECT_LT(xs[t], xs[t - 1]) << "left clip, frame " << t;
      else
        EXPECT_GT(xs[t], xs[t - 1]) << "right clip, frame " << t;
    }
  }
  for (int d = 0; d < 2; ++d) {
    Generator g(11 + d);
    ClipParams p = sample_clip(3, Motion::scale, d, W, H, 0.0, g);
    const std::vector<double> a = bright_area(render_clip(p, T, W, H), T, W, H);
    if (d == 0)
      EXPECT_GT(a.back(), 2.5 * a.front());  // growing: radius x1.7..2.2
    else
      EXPECT_GT(a.front(), 2.5 * a.back());
  }
}

TEST(Synth, WritesDecodableVideosAndLists) {
  TempDir tmp;
  const fs::path out = tmp.path / "clips";
  SynthOptions o = small(out);
  SynthSummary s = synthesize(o);
  EXPECT_EQ(s.clips, 6);
  const std::string expect_codec = s.codec == "libx264" ? "h264" : "mpeg4";
  // lists: `relative/path label`, balanced cycle over shape x direction
  EXPECT_EQ(slurp(out / "train_combined.list"),
            "train/clip_000000.mp4 0\ntrain/clip_000001.mp4 1\ntrain/clip_000002.mp4 2\n"
            "train/clip_000003.mp4 3\n");
  EXPECT_EQ(slurp(out / "train_appearance.list"),
            "train/clip_000000.mp4 0\ntrain/clip_000001.mp4 0\ntrain/clip_000002.mp4 1\n"
            "train/clip_000003.mp4 1\n");
  EXPECT_EQ(slurp(out / "valid_order.list"), "valid/clip_000000.mp4 0\nvalid/clip_000001.mp4 1\n");
  EXPECT_FALSE(fs::exists(out / "test_order.list"));  // no test clips asked for
  EXPECT_EQ(slurp(out / "classes_combined.txt"),
            "circle_left\ncircle_right\nsquare_left\nsquare_right\n");
  EXPECT_NE(slurp(out / "classes.json").find("\"appearance\""), std::string::npos);
  for (const auto& e : fs::recursive_directory_iterator(out))
    EXPECT_EQ(e.path().string().find(".partial"), std::string::npos) << e.path();

  for (const char* rel :
       {"train/clip_000000.mp4", "train/clip_000003.mp4", "valid/clip_000001.mp4"}) {
    const fs::path f = out / rel;
    ASSERT_TRUE(fs::exists(f)) << f;
    EXPECT_EQ(probe(f, "codec_name"), expect_codec);
    EXPECT_EQ(probe(f, "width"), "32");
    EXPECT_EQ(probe(f, "height"), "32");
    const std::string rgb = decode_rgb(f);
    ASSERT_EQ(rgb.size(), static_cast<size_t>(o.frames) * 32 * 32 * 3) << rel;
  }
  // The decoded clip still moves the labelled way (valid clip 0: left, clip 1: right).
  for (int k = 0; k < 2; ++k) {
    const std::string rgb = decode_rgb(out / ("valid/clip_00000" + std::to_string(k) + ".mp4"));
    std::vector<double> xs =
        centroid_x(reinterpret_cast<const uint8_t*>(rgb.data()), o.frames, 32, 32);
    const double moved = xs.back() - xs.front();
    if (k == 0)
      EXPECT_LT(moved, -5) << "left clip decoded";
    else
      EXPECT_GT(moved, 5) << "right clip decoded";
  }
}

TEST(Synth, DeterministicForASeedAndRefusesToOverwrite) {
  TempDir tmp;
  SynthOptions a = small(tmp.path / "a"), b = small(tmp.path / "b"), c = small(tmp.path / "c");
  a.train = b.train = c.train = 2;
  a.valid = b.valid = c.valid = 0;
  c.seed = 8;
  synthesize(a);
  synthesize(b);
  synthesize(c);
  for (const char* rel : {"train/clip_000000.mp4", "train/clip_000001.mp4", "clips.tsv"}) {
    EXPECT_TRUE(slurp(tmp.path / "a" / rel) == slurp(tmp.path / "b" / rel)) << rel;
    EXPECT_TRUE(slurp(tmp.path / "a" / rel) != slurp(tmp.path / "c" / rel)) << rel;
  }
  try {
    synthesize(a);
    FAIL() << "wrote into a non-empty directory";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--force"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find((tmp.path / "a").string()), std::string::npos);
  }
  a.force = true;
  EXPECT_EQ(synthesize(a).clips, 2);
  EXPECT_TRUE(slurp(tmp.path / "a/train/clip_000000.mp4") ==
              slurp(tmp.path / "b/train/clip_000000.mp4"));
}

TEST(Synth, OtherContainersAndCodecs) {
  TempDir tmp;
  SynthOptions o = small(tmp.path / "avi");
  o.train = 1;
  o.valid = 0;
  o.encode.container = "avi";
  o.motions = {"rotate", "scale"};
  o.labels = {"order"};
  SynthSummary s = synthesize(o);
  EXPECT_EQ(s.codec, "mpeg4");
  ASSERT_EQ(s.list_files, std::vector<std::string>{"train_order.list"});
  const fs::path f = tmp.path / "avi/train/clip_000000.avi";
  EXPECT_EQ(probe(f, "codec_name"), "mpeg4");
  EXPECT_EQ(decode_rgb(f).size(), static_cast<size_t>(o.frames) * 32 * 32 * 3);
  EXPECT_EQ(slurp(tmp.path / "avi/classes_order.txt"),
            "clockwise\nanticlockwise\ngrowing\nshrinking\n");

  SynthOptions webm = small(tmp.path / "webm");
  webm.train = 1;
  webm.valid = 0;
  webm.encode.container = "webm";
  EXPECT_EQ(synthesize(webm).codec, "libvpx-vp9");
  const fs::path w = tmp.path / "webm/train/clip_000000.webm";
  EXPECT_EQ(probe(w, "codec_name"), "vp9");
  EXPECT_EQ(decode_rgb(w).size(), static_cast<size_t>(webm.frames) * 32 * 32 * 3);

  SynthOptions bad = small(tmp.path / "bad");
  bad.encode.codec = "no_such_codec";
  EXPECT_THROW(synthesize(bad), Error);
  bad.encode.codec = "auto";
  bad.motions = {"spin"};
  try {
    synthesize(bad);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("translate, scale, rotate"), std::string::npos);
  }
}
