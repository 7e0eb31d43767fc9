#pragma once
// `oar video synth`: labelled clips of moving shapes, written as real video files
// (docs/video/synth.md).
#include <CLI/CLI.hpp>

#include <functional>

namespace oar::app {

// Adds the `synth` subcommand to the `video` group; when it is chosen, `action` is set to run it.
void add_video_synth(CLI::App* video_group, std::function<int()>& action);

}  // namespace oar::app
