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
#include "engine/io/atomic_file.h"
#include "engine/io/json.h"
#include "nlp/models/lac.h"

namespace oar::app {

namespace {

constexpr const char* kJiebaLac = "/usr/lib/python3/dist-packages/jieba/lac_small";
constexpr int kMaxWarnings = 20;

std::string lac_dir(const SegmentOptions& o) {
  if (!o.model.empty()) return o.model;
  if (const char* e = std::getenv("OAR_LAC_DIR")) return e;
  return kJiebaLac;
}

// Position of the first invalid UTF-8 byte, or npos. Overlong forms, surrogates and code points
// past U+10FFFF are invalid, as in the Unicode standard.
size_t first_invalid(const std::string& s, size_t from = 0) {
  for (size_t i = from; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    size_t n;
    uint32_t cp, min;
    if (b < 0x80) {
      ++i;
      continue;
    } else if ((b & 0xE0) == 0xC0) {
      n = 2, cp = b & 0x1F, min = 0x80;
    } else if ((b & 0xF0) == 0xE0) {
      n = 3, cp = b & 0x0F, min = 0x800;
    } else if ((b & 0xF8) == 0xF0) {
      n = 4, cp = b & 0x07, min = 0x10000;
    } else {
      return i;
    }
    if (i + n > s.size()) return i;
    for (size_t k = 1; k < n; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (c & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += n;
  }
  return std::string::npos;
}

// Every invalid byte becomes U+FFFD.
std::string replace_invalid(const std::string& s) {
  std::string out;
  size_t from = 0;
  for (size_t bad = first_invalid(s); bad != std::string::npos; bad = first_invalid(s, from)) {
    out.append(s, from, bad - from);
    out += "\xEF\xBF\xBD";
    from = bad + 1;
  }
  out.append(s, from, std::string::npos);
  return out;
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

class Sink {
 public:
  explicit Sink(const std::string& path) {
    if (!path.empty()) file_.emplace(path);
  }
  void write(const std::string& s) {
    if (file_) {
      file_->write(s);
    } else {
      std::fwrite(s.data(), 1, s.size(), stdout);
    }
  }
  void finish() {
    if (file_)
      file_->commit();
    else
      std::fflush(stdout);
  }

 private:
  std::optional<io::AtomicWriter> file_;
};

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
  const int threads = o.threads > 0
                          ? o.threads
                          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  const bool json = o.format == "json";
  std::vector<std::string> inputs = o.inputs;
  if (inputs.empty()) inputs.push_back("-");
  for (const auto& in : inputs)
    if (in != "-" && !std::filesystem::is_regular_file(in)) OAR_FAIL(in, ": no such input file");

  Sink sink(o.output);
  int64_t warned = 0, bad_lines = 0;
  const size_t block = static_cast<size_t>(threads) * static_cast<size_t>(o.batch_size);
  std::vector<std::string> lines;
  std::vector<std::string> out;

  // Segments `lines` (threads take contiguous slices) and writes the results in order.
  const auto flush = [&] {
    out.assign(lines.size(), std::string());
    // One OpenMP thread per worker: LAC's per-step matrices are too small to split, and idle
    // pool threads only add synchronisation.
    const auto run = [&](size_t begin, size_t end) {
      set_num_threads(1);
      for (size_t b = begin; b < end; b += static_cast<size_t>(o.batch_size)) {
        const size_t e = std::min(end, b + static_cast<size_t>(o.batch_size));
        const auto words =
            lac.segment(std::vector<std::string>(lines.begin() + static_cast<std::ptrdiff_t>(b),
                                                 lines.begin() + static_cast<std::ptrdiff_t>(e)));
        for (size_t k = b; k < e; ++k) out[k] = format_line(words[k - b], json);
      }
    };
    const size_t per = (lines.size() + static_cast<size_t>(threads) - 1) / threads;
    std::vector<std::thread> pool;
    std::vector<std::exception_ptr> errors(static_cast<size_t>(threads));
    for (int t = 1; t < threads && static_cast<size_t>(t) * per < lines.size(); ++t)
      pool.emplace_back([&, t] {
        try {
          run(static_cast<size_t>(t) * per, std::min(lines.size(), (t + 1) * per));
        } catch (...) {
          errors[static_cast<size_t>(t)] = std::current_exception();
        }
      });
    try {
      run(0, std::min(lines.size(), per));
    } catch (...) {
      errors[0] = std::current_exception();
    }
    for (auto& th : pool) th.join();
    for (const auto& e : errors)
      if (e) std::rethrow_exception(e);
    for (const auto& s : out) sink.write(s);
    lines.clear();
  };

  for (const auto& in : inputs) {
    std::ifstream file;
    if (in != "-") {
      file.open(in, std::ios::binary);
      OAR_CHECK(file, in, ": cannot open for reading");
    }
    std::istream& is = in == "-" ? std::cin : file;
    const std::string name = in == "-" ? "<stdin>" : in;
    std::string line;
    int64_t lineno = 0;
    while (std::getline(is, line)) {
      ++lineno;
      const size_t bad = first_invalid(line);
      if (bad != std::string::npos) {
        ++bad_lines;
        if (o.invalid_utf8 == "error") {
          flush();  // what came before the bad line is kept
          sink.finish();
          OAR_FAIL(name, ":", lineno, ": invalid UTF-8 at byte ", bad + 1,
                   " (--invalid-utf8 replace or skip to continue past it)");
        }
        if (warned < kMaxWarnings) {
          std::fprintf(stderr, "warning: %s:%lld: invalid UTF-8 at byte %zu (%s)\n", name.c_str(),
                       static_cast<long long>(lineno), bad + 1,
                       o.invalid_utf8 == "skip" ? "line skipped" : "replaced by U+FFFD");
          ++warned;
        }
        if (o.invalid_utf8 == "skip") continue;
        line = replace_invalid(line);
      }
      lines.push_back(std::move(line));
      if (lines.size() >= block) flush();
    }
    OAR_CHECK(is.eof(), name, ":", lineno, ": read error");
  }
  flush();
  sink.finish();
  if (bad_lines > warned)
    std::fprintf(stderr, "warning: %lld more lines with invalid UTF-8\n",
                 static_cast<long long>(bad_lines - warned));
  return 0;
}

void add_text_commands(CLI::App& app, std::function<int()>& action) {
  auto* text = app.add_subcommand("text", "text tools: segment (LAC)");
  text->require_subcommand(1);
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
