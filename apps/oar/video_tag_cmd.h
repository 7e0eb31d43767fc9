#pragma once
// `oar video-tag`: labels for a folder, glob or list of videos as JSON lines, with one model or
// a feature extractor and a sequence model (docs/video/tagging.md).
#include <CLI/CLI.hpp>

#include <functional>

namespace oar::app {

// Adds the top-level `video-tag` command; when it is chosen, `action` runs it.
void add_video_tag(CLI::App& app, std::function<int()>& action);

}  // namespace oar::app
