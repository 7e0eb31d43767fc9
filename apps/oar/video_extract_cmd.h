#pragma once
// `oar video extract`: per-frame features of videos from a trained TSN, as `video_features`
// files and a list (docs/video/tagging.md).
#include <CLI/CLI.hpp>

#include <functional>

namespace oar::app {

// Adds the `extract` subcommand to the `video` group; when it is chosen, `action` runs it.
void add_video_extract(CLI::App* video_group, std::function<int()>& action);

}  // namespace oar::app
