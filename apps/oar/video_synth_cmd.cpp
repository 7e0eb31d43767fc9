#include "apps/oar/video_synth_cmd.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "engine/core/error.h"
#include "video/synth/synth.h"

namespace oar::app {

namespace {

struct SynthArgs {
  video::synth::SynthOptions o;
  std::string size = "64x64";
  bool quiet = false;
};

void parse_size(const std::string& s, int& w, int& h) {
  const size_t x = s.find('x');
  char* end = nullptr;
  OAR_CHECK(x != std::string::npos, "--size: expected WIDTHxHEIGHT (e.g. 64x64), got '", s, "'");
  const long wv = std::strtol(s.substr(0, x).c_str(), &end, 10);
  OAR_CHECK(end && *end == '\0' && x > 0, "--size: bad width in '", s, "'");
  const std::string hs = s.substr(x + 1);
  const long hv = std::strtol(hs.c_str(), &end, 10);
  OAR_CHECK(end && *end == '\0' && !hs.empty(), "--size: bad height in '", s, "'");
  w = static_cast<int>(wv);
  h = static_cast<int>(hv);
}

int run_synth(SynthArgs& a) {
  parse_size(a.size, a.o.width, a.o.height);
  const bool tty = ::isatty(2);
  int64_t last_pct = -1;
  auto progress = [&](int64_t done, int64_t total) {
    if (a.quiet) return;
    const int64_t pct = done * 100 / total;
    if (pct == last_pct && done != total) return;
    last_pct = pct;
    if (tty)
      std::fprintf(stderr, "\rsynth: %lld/%lld clips", static_cast<long long>(done),
                   static_cast<long long>(total));
    else if (pct % 10 == 0)
      std::fprintf(stderr, "synth: %lld/%lld clips\n", static_cast<long long>(done),
                   static_cast<long long>(total));
    if (tty && done == total) std::fprintf(stderr, "\n");
  };
  const video::synth::SynthSummary s = video::synth::synthesize(a.o, progress);
  std::printf("wrote %lld clips (%s, %s, %dx%d, %d frames at %d fps) to %s\n",
              static_cast<long long>(s.clips), a.o.encode.container.c_str(), s.codec.c_str(),
              a.o.width, a.o.height, a.o.frames, a.o.encode.fps, a.o.out_dir.c_str());
  for (const auto& f : s.list_files) std::printf("  %s\n", f.c_str());
  return 0;
}

}  // namespace

void add_video_synth(CLI::App* video_group, std::function<int()>& action) {
  auto args = std::make_shared<SynthArgs>();
  video::synth::SynthOptions& o = args->o;
  auto* c = video_group->add_subcommand(
      "synth",
      "render labelled clips of moving shapes (appearance: which shape; order: which way it "
      "moves) to real video files, with `path label` list files");
  c->add_option("out_dir", o.out_dir, "output directory (must be empty unless --force)")
      ->required();
  c->add_option("--train", o.train, "clips in the train split")->default_val(o.train);
  c->add_option("--valid", o.valid, "clips in the valid split")->default_val(o.valid);
  c->add_option("--test", o.test, "clips in the test split")->default_val(o.test);
  c->add_option("--frames", o.frames, "frames per clip")->default_val(o.frames);
  c->add_option("--fps", o.encode.fps, "frame rate of the files")->default_val(o.encode.fps);
  c->add_option("--size", args->size, "frame size WIDTHxHEIGHT (even)")->default_val("64x64");
  c->add_option("--seed", o.seed, "seed: the same seed writes the same files")->default_val(o.seed);
  c->add_option("--shapes", o.num_shapes,
                "appearance classes: the first N of circle, square, triangle, diamond, cross, "
                "star, hexagon, ring")
      ->default_val(o.num_shapes);
  c->add_option("--motions", o.motions,
                "motions, each giving two order classes: translate (left/right), scale "
                "(growing/shrinking), rotate (clockwise/anticlockwise)")
      ->delimiter(',')
      ->default_str("translate");
  c->add_option("--labels", o.labels,
                "label lists to write: appearance, order, combined (shape x order)")
      ->delimiter(',')
      ->default_str("appearance,order,combined");
  c->add_option("--noise", o.noise, "per-pixel noise std (0..255 units)")->default_val(o.noise);
  c->add_option("--container", o.encode.container, "FFmpeg muxer: mp4, avi, matroska, webm, mov")
      ->default_val(o.encode.container);
  c->add_option("--codec", o.encode.codec,
                "encoder: auto (libx264 when available, else mpeg4; vp9 for webm), libx264, "
                "mpeg4, libvpx-vp9, mjpeg, ...")
      ->default_val(o.encode.codec);
  c->add_option("--quality", o.encode.quality, "CRF for x264/vp9 (qscale ~ quality/6 otherwise)")
      ->default_val(o.encode.quality);
  c->add_flag("--force", o.force, "write into a non-empty directory, replacing files");
  c->add_flag("--quiet", args->quiet, "no progress on stderr");
  c->callback([args, &action] { action = [args] { return run_synth(*args); }; });
}

}  // namespace oar::app
