#pragma once
// Test videos made at test time with the ffmpeg CLI. Every frame carries its own index as a bar
// code: 8 vertical bars of 16 pixels across a 128 x 32 picture, bar b white when bit b of the
// index is set, which survives lossy codecs and scaling far better than drawn text.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "readers/video/decoder.h"

namespace oar::test_video {

namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("oar_video_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

// The ffmpeg CLI with the encoders the tests use.
inline bool have_ffmpeg() {
  static const bool ok =
      std::system(
          "ffmpeg -hide_banner -encoders 2>/dev/null | grep -q ' libx264 ' && "
          "ffmpeg -hide_banner -encoders 2>/dev/null | grep -q ' mpeg4 ' && "
          "ffmpeg -hide_banner -encoders 2>/dev/null | grep -q ' libvpx-vp9 '") == 0;
  return ok;
}

#define OAR_NEED_FFMPEG()                \
  if (!::oar::test_video::have_ffmpeg()) \
  GTEST_SKIP() << "needs the ffmpeg CLI with the libx264, mpeg4 and libvpx-vp9 encoders"

// The bar-code filter: luma 255 where bit floor(X / 16) of the frame number N is set.
inline std::string code_filter() {
  return "geq=lum='255*mod(floor(N/pow(2\\,floor(X/16)))\\,2)':cb=128:cr=128";
}

// Runs ffmpeg quietly; false when it fails.
inline bool ffmpeg(const std::string& args) {
  return std::system(("ffmpeg -nostdin -v error -y " + args + " > /dev/null 2>&1").c_str()) == 0;
}

// `frames` coded frames at `fps` through `extra_filter` (appended after the code), encoded with
// `codec_args` into `path` (the container from its extension).
inline void make_video(const fs::path& path, const std::string& codec_args, int frames = 60,
                       int fps = 25, const std::string& extra_filter = "") {
  fs::create_directories(path.parent_path());
  const std::string vf = code_filter() + (extra_filter.empty() ? "" : "," + extra_filter);
  const std::string cmd = "-f lavfi -i color=c=black:s=128x32:r=" + std::to_string(fps) +
                          " -vf \"" + vf + "\" -frames:v " + std::to_string(frames) + " " +
                          codec_args + " \"" + path.string() + "\"";
  ASSERT_TRUE(ffmpeg(cmd)) << "ffmpeg failed: " << cmd;
}

// The index coded in an RGB frame (any size: bars are sampled at their centres).
inline int64_t read_code(const uint8_t* rgb, int64_t height, int64_t width) {
  int64_t v = 0;
  for (int b = 0; b < 8; ++b) {
    const int64_t x = (b * 16 + 8) * width / 128, y = height / 2;
    if (rgb[(y * width + x) * 3] > 128) v |= int64_t{1} << b;
  }
  return v;
}

inline int64_t read_code(const readers::VideoFrame& f) {
  return read_code(f.rgb.data(), f.height, f.width);
}

inline void write_text(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << s;
}

// The first `fraction` of a file's bytes, as a new file.
inline void truncate_copy(const fs::path& from, const fs::path& to, double fraction) {
  std::ifstream in(from, std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::ofstream(to, std::ios::binary)
      .write(data.data(), static_cast<std::streamsize>(data.size() * fraction));
}

}  // namespace oar::test_video
