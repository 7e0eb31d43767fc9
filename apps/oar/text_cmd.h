#pragma once
// `oar text ...`: streaming text tools over lines of stdin or files, in input order, on the shared
// line pipeline (nlp/text/line_pipeline.h). `segment` runs Baidu's LAC (word segmentation with
// POS and PER/LOC/ORG/TIME tags); normalize, tokenize, build-vocab, split and stats are in
// text_tools_cmd.cpp (docs/nlp-text-tools.md).
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

// Registers normalize, tokenize, build-vocab, split and stats under `text`.
void add_text_tool_commands(CLI::App& text, std::function<int()>& action);

}  // namespace oar::app
