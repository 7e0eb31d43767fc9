#include "apps/oar/text_cmd.h"

#ifdef OAR_HAVE_NLP

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <thread>

#include "engine/core/context.h"
#include "engine/core/error.h"
#include "engine/io/json.h"
#include "nlp/models/lac.h"
#include "nlp/text/line_pipeline.h"

namespace oar::app {

namespace {

constexpr const char* kJiebaLac = "/usr/lib/python3/dist-packages/jieba/lac_small";

std::string lac_dir(const SegmentOptions& o) {
  if (!o.model.empty()) return o.model;
  if (const char* e = std::getenv("OAR_LAC_DIR")) return e;
  return kJiebaLac;
}

std::string format_line(const std::vector<nlp::LacWord>& words, bool json) {
  if (json) {
    Json w = Json::array(), t = Json::array();
    for (const auto& x : words) {
      w.push_back(x.text);
      t.push_back(x.tag);
    }
    Json rec = Json::object();
    rec["words"] = std::move(w);
    rec["tags"] = std::move(t);
    return rec.dump() + "\n";
  }
  std::string out;
  for (size_t k = 0; k < words.size(); ++k) {
    if (k) out += ' ';
    out += words[k].text;
    out += '/';
    out += words[k].tag;
  }
  return out + "\n";
}

}  // namespace

int cmd_text_segment(const SegmentOptions& o) {
  OAR_CHECK(o.format == "text" || o.format == "json", "--format must be text or json, got '",
            o.format, "'");
  OAR_CHECK(o.invalid_utf8 == "replace" || o.invalid_utf8 == "skip" || o.invalid_utf8 == "error",
            "--invalid-utf8 must be replace, skip or error, got '", o.invalid_utf8, "'");
  OAR_CHECK(o.batch_size >= 1, "--batch-size must be at least 1, got ", o.batch_size);
  OAR_CHECK(o.threads >= 0, "--threads must be 0 (all cores) or more, got ", o.threads);
  const std::string dir = lac_dir(o);
  if (!std::filesystem::exists(dir + "/model_baseline"))
    OAR_FAIL("no LAC model at ", dir,
             " (install Debian's python3-jieba, or pass --model DIR / set OAR_LAC_DIR to a "
             "directory with word.dic, tag.dic and model_baseline/)");
  nlp::LacSegmenter lac = nlp::LacSegmenter::load(dir);
  const bool json = o.format == "json";
  nlp::text::LineReader reader(o.inputs, nlp::text::parse_invalid_utf8(o.invalid_utf8));
  nlp::text::Output out(o.output);
  nlp::text::PipelineOptions po;
  po.threads = o.threads;
  po.batch_size = static_cast<size_t>(o.batch_size);
  // On a bad line, the lines before it are published, as on stdout (docs/nlp-lac.md).
  try {
    nlp::text::run_pipeline_batched(
        reader, po,
        [&](int, std::span<const nlp::text::Line> lines, std::span<std::string> outs) {
          // One OpenMP thread per worker: LAC's per-step matrices are too small to split, and idle
          // pool threads only add synchronisation.
          set_num_threads(1);
          std::vector<std::string> texts;
          texts.reserve(lines.size());
          for (const auto& l : lines) texts.push_back(l.text);
          const auto words = lac.segment(texts);
          for (size_t k = 0; k < lines.size(); ++k) outs[k] = format_line(words[k], json);
        },
        [&](std::string_view s) { out.write(s); });
  } catch (...) {
    out.commit();
    throw;
  }
  out.commit();
  return 0;
}

void add_text_commands(CLI::App& app, std::function<int()>& action) {
  auto* text = app.add_subcommand(
      "text", "text tools: normalize, tokenize, segment (LAC), build-vocab, split, stats");
  text->require_subcommand(1);
  add_text_tool_commands(*text, action);
  auto o = std::make_shared<SegmentOptions>();
  auto* seg = text->add_subcommand(
      "segment",
      "Chinese word segmentation with POS and PER/LOC/ORG/TIME tags by Baidu's LAC; one output "
      "line per input line, in order");
  seg->add_option("inputs", o->inputs, "input files (default: stdin; '-' is stdin)");
  seg->add_option("--model", o->model,
                  "LAC directory: word.dic, tag.dic, model_baseline/ (default: $OAR_LAC_DIR, else "
                  "python3-jieba's lac_small)");
  seg->add_option("--format", o->format, "text (word/TAG word/TAG) or json (JSON lines)")
      ->check(CLI::IsMember({"text", "json"}))
      ->default_val("text");
  seg->add_option("--invalid-utf8", o->invalid_utf8,
                  "replace (U+FFFD), skip (drop the line) or error; reported with the line number")
      ->check(CLI::IsMember({"replace", "skip", "error"}))
      ->default_val("replace");
  seg->add_option("-o,--output", o->output, "output file (default: stdout)");
  seg->add_option("--threads", o->threads, "worker threads over lines (0: all cores)")
      ->default_val(1);
  seg->add_option("--batch-size", o->batch_size, "lines per model call")->default_val(32);
  seg->callback([o, &action] { action = [o] { return cmd_text_segment(*o); }; });
}

}  // namespace oar::app

#else

namespace oar::app {
void add_text_commands(CLI::App&, std::function<int()>&) {}
}  // namespace oar::app

#endif
