// `oar video ...`: tools for video files. This file makes the group and its `probe` command;
// other tools (e.g. `synth`) add their subcommands to the same group from their own files, taking
// it with app.get_subcommand("video") after add_video_commands() ran.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "apps/oar/app.h"
#include "apps/oar/commands.h"
#include "apps/oar/video_extract_cmd.h"
#include "engine/io/json.h"
#include "readers/video/decoder.h"

namespace oar::app {

namespace {

struct ProbeOptions {
  std::vector<std::string> files;
  bool json = false;
  bool no_decode = false;
};

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
  return buf;
}

// One block (or one JSON line) per file; a file that cannot be read gets an `error:` line on
// stderr and the others are still probed. Exit status 2 when any failed.
int cmd_video_probe(const ProbeOptions& o) {
  int failed = 0;
  for (const std::string& f : o.files) {
    readers::VideoInfo i;
    try {
      i = readers::probe_video(f, !o.no_decode);
    } catch (const std::exception& e) {
      std::fflush(stdout);
      std::fprintf(stderr, "error: %s\n", e.what());
      ++failed;
      continue;
    }
    if (o.json) {
      Json j = Json::object();
      j["path"] = i.path;
      j["container"] = i.container;
      j["codec"] = i.codec;
      j["width"] = i.width;
      j["height"] = i.height;
      j["frames"] = i.frames;
      j["header_frames"] = i.header_frames;
      j["fps"] = i.fps;
      j["duration"] = i.duration;
      j["rotation"] = static_cast<int64_t>(i.rotation);
      std::printf("%s\n", j.dump().c_str());
      continue;
    }
    std::printf("%s\n", i.path.c_str());
    std::printf("  container  %s\n", i.container.c_str());
    std::printf("  codec      %s\n", i.codec.c_str());
    std::printf("  size       %lldx%lld\n", static_cast<long long>(i.width),
                static_cast<long long>(i.height));
    std::printf("  frames     %lld (%s; header: %s)\n", static_cast<long long>(i.frames),
                o.no_decode ? "packets counted" : "decoded",
                i.header_frames > 0 ? std::to_string(i.header_frames).c_str() : "none");
    std::printf("  fps        %s\n", fixed(i.fps, 3).c_str());
    std::printf("  duration   %s s\n", fixed(i.duration, 3).c_str());
    std::printf("  rotation   %d\n", i.rotation);
  }
  std::fflush(stdout);
  return failed ? kExitBadInput : 0;
}

}  // namespace

void add_video_commands(CLI::App& app, std::function<int()>& action) {
  auto* video =
      app.add_subcommand("video", "video files: probe (and tools that add to this group)");
  video->require_subcommand(1);
  auto probe_opts = std::make_shared<ProbeOptions>();
  auto* probe = video->add_subcommand(
      "probe",
      "container, codec, size, exact frame count, fps, duration and rotation of video files");
  probe->add_option("files", probe_opts->files, "video files")->required();
  probe->add_flag("--json", probe_opts->json, "one JSON object per line");
  probe->add_flag("--no-decode", probe_opts->no_decode,
                  "count packets instead of decoding every frame (faster; exact for well-formed "
                  "files)");
  probe->callback(
      [probe_opts, &action] { action = [probe_opts] { return cmd_video_probe(*probe_opts); }; });
  add_video_extract(video, action);
}

}  // namespace oar::app
