#pragma once
// `oar text ...`: streaming text tools. `segment` runs Baidu's LAC (word segmentation with POS
// and PER/LOC/ORG/TIME tags) over lines of stdin or files, in input order.
#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace oar::app {

struct SegmentOptions {
  std::vector<std::string> inputs;       // files; none or "-": stdin
  std::string model;                     // LAC directory (word.dic, tag.dic, model_baseline/)
  std::string format = "text";           // text: "word/TAG word/TAG"; json: one object per line
  std::string invalid_utf8 = "replace";  // replace (U+FFFD per bad byte) | skip (the line) | error
  std::string output;                    // file (written atomically); empty: stdout
  int threads = 1;                       // worker threads, each on its own lines; 0: all cores
  int batch_size = 32;                   // lines per model call
};

// Registers the `text` command group; the chosen command's action is stored in `action`.
// A build without nlp/ registers nothing.
void add_text_commands(CLI::App& app, std::function<int()>& action);

int cmd_text_segment(const SegmentOptions& o);

}  // namespace oar::app
