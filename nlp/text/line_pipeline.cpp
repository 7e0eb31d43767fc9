#include "nlp/text/line_pipeline.h"

#include <algorithm>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "engine/core/error.h"
#include "engine/io/atomic_file.h"

namespace oar::nlp::text {

namespace {
constexpr int64_t kMaxWarnings = 20;
}

InvalidUtf8 parse_invalid_utf8(const std::string& s) {
  if (s == "replace") return InvalidUtf8::replace;
  if (s == "skip") return InvalidUtf8::skip;
  if (s == "error") return InvalidUtf8::error;
  OAR_FAIL("--invalid-utf8 must be replace, skip or error, got '", s, "'");
}

size_t first_invalid_utf8(std::string_view s, size_t from) {
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
  return std::string_view::npos;
}

std::string replace_invalid_utf8(std::string_view s) {
  std::string out;
  size_t from = 0;
  for (size_t bad = first_invalid_utf8(s); bad != std::string_view::npos;
       bad = first_invalid_utf8(s, from)) {
    out.append(s, from, bad - from);
    out += "\xEF\xBF\xBD";
    from = bad + 1;
  }
  out.append(s, from, std::string_view::npos);
  return out;
}

std::string Line::where() const {
  return (file ? *file : std::string("<input>")) + ":" + std::to_string(number);
}

LineReader::LineReader(std::vector<std::string> inputs, InvalidUtf8 policy)
    : inputs_(std::move(inputs)), policy_(policy) {
  if (inputs_.empty()) inputs_.push_back("-");
  for (const auto& in : inputs_) {
    if (in != "-" && !std::filesystem::is_regular_file(in)) OAR_FAIL(in, ": no such input file");
    names_.push_back(in == "-" ? "<stdin>" : in);
  }
}

LineReader::~LineReader() = default;

bool LineReader::open_next() {
  if (current_ >= inputs_.size()) return false;
  const std::string& in = inputs_[current_];
  lineno_ = 0;
  if (in == "-") {
    file_.reset();
    in_ = &std::cin;
  } else {
    auto f = std::make_unique<std::ifstream>(in, std::ios::binary);
    OAR_CHECK(*f, in, ": cannot open for reading");
    file_ = std::move(f);
    in_ = file_.get();
  }
  return true;
}

bool LineReader::next(Line& line) {
  if (peeked_) {
    line = std::move(*peeked_);
    peeked_.reset();
    return true;
  }
  return read(line);
}

const Line* LineReader::peek() {
  if (!peeked_) {
    Line line;
    if (!read(line)) return nullptr;
    peeked_ = std::move(line);
  }
  return &*peeked_;
}

bool LineReader::read(Line& line) {
  while (true) {
    if (!in_ && !open_next()) return false;
    if (!std::getline(*in_, line.text)) {
      OAR_CHECK(in_->eof(), names_[current_], ":", lineno_ + 1, ": read error");
      in_ = nullptr;
      file_.reset();
      ++current_;
      continue;
    }
    ++lineno_;
    line.file = &names_[current_];
    line.number = lineno_;
    const size_t bad = first_invalid_utf8(line.text);
    if (bad == std::string::npos) return true;
    ++invalid_lines_;
    if (policy_ == InvalidUtf8::error)
      OAR_FAIL(names_[current_], ":", lineno_, ": invalid UTF-8 at byte ", bad + 1,
               " (--invalid-utf8 replace or skip to continue past it)");
    if (!quiet_ && warned_ < kMaxWarnings) {
      std::fprintf(stderr, "warning: %s:%lld: invalid UTF-8 at byte %zu (%s)\n",
                   names_[current_].c_str(), static_cast<long long>(lineno_), bad + 1,
                   policy_ == InvalidUtf8::skip ? "line skipped" : "replaced by U+FFFD");
      ++warned_;
    }
    if (policy_ == InvalidUtf8::skip) continue;
    line.text = replace_invalid_utf8(line.text);
    return true;
  }
}

void LineReader::rewind() {
  for (const auto& in : inputs_)
    OAR_CHECK(in != "-", "this tool reads its input twice, so it cannot read stdin; give a file");
  in_ = nullptr;
  file_.reset();
  peeked_.reset();
  current_ = 0;
  lineno_ = 0;
  invalid_lines_ = 0;
}

void LineReader::report_remaining() const {
  if (!quiet_ && invalid_lines_ > warned_)
    std::fprintf(stderr, "warning: %lld more lines with invalid UTF-8\n",
                 static_cast<long long>(invalid_lines_ - warned_));
}

Output::Output(const std::string& path) {
  if (!path.empty() && path != "-") file_ = std::make_unique<io::AtomicWriter>(path);
}

Output::~Output() = default;

void Output::write(std::string_view bytes) {
  if (file_) {
    file_->write(bytes);
  } else {
    std::fwrite(bytes.data(), 1, bytes.size(), stdout);
  }
}

void Output::commit() {
  if (file_) {
    file_->commit();
  } else {
    std::fflush(stdout);
    OAR_CHECK(!std::ferror(stdout), "<stdout>: write error");
  }
}

int resolve_threads(int threads) {
  OAR_CHECK(threads >= 0, "--threads must be 0 (all cores) or more, got ", threads);
  return threads > 0 ? threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

namespace {

// Maps blocks of threads x batch_size lines, each worker a contiguous slice in chunks of at most
// batch_size; `map` advances `done` past each line it finished, so that a failure writes exactly
// the lines before it.
using ChunkMap = std::function<void(int, std::span<const Line>, std::span<std::string>, size_t&)>;

void run_blocks(LineReader& reader, const PipelineOptions& options, const ChunkMap& map,
                const std::function<void(std::string_view)>& write) {
  OAR_CHECK(options.batch_size >= 1, "--batch-size must be at least 1, got ", options.batch_size);
  const int threads = resolve_threads(options.threads);
  const size_t batch = options.batch_size;
  const size_t block = static_cast<size_t>(threads) * batch;
  std::vector<Line> lines(block);
  std::vector<std::string> out(block);
  // Per worker: index of the first line not done when it failed (block when none), and why.
  std::vector<size_t> failed_at(static_cast<size_t>(threads));
  std::vector<std::exception_ptr> errors(static_cast<size_t>(threads));

  // Maps lines [0, n) and writes them; rethrows the earliest failure after writing what came
  // before it.
  const auto flush = [&](size_t n) {
    const size_t per = (n + static_cast<size_t>(threads) - 1) / static_cast<size_t>(threads);
    const auto run = [&](int w) {
      const size_t begin = static_cast<size_t>(w) * per, end = std::min(n, begin + per);
      failed_at[size_t(w)] = block;
      errors[size_t(w)] = nullptr;
      for (size_t b = begin; b < end; b += batch) {
        const size_t e = std::min(end, b + batch);
        size_t done = 0;
        try {
          for (size_t k = b; k < e; ++k) out[k].clear();
          map(w, std::span<const Line>(lines.data() + b, e - b),
              std::span<std::string>(out.data() + b, e - b), done);
        } catch (...) {
          failed_at[size_t(w)] = b + done;
          errors[size_t(w)] = std::current_exception();
          return;
        }
      }
    };
    std::vector<std::thread> pool;
    for (int w = 1; w < threads && static_cast<size_t>(w) * per < n; ++w) pool.emplace_back(run, w);
    run(0);
    for (auto& t : pool) t.join();
    size_t stop = n;
    std::exception_ptr error;
    for (size_t w = 0; w < pool.size() + 1; ++w)
      if (errors[w] && failed_at[w] < stop) stop = failed_at[w], error = errors[w];
    for (size_t k = 0; k < stop; ++k) write(out[k]);
    if (error) std::rethrow_exception(error);
  };

  size_t n = 0;
  while (true) {
    bool more;
    try {
      more = reader.next(lines[n]);
    } catch (...) {
      flush(n);  // the lines before a fatal one are still written
      throw;
    }
    if (!more) break;
    if (++n == block) {
      flush(n);
      n = 0;
    }
  }
  flush(n);
  reader.report_remaining();
}

}  // namespace

void run_pipeline(LineReader& reader, const PipelineOptions& options,
                  const std::function<void(int, const Line&, std::string&)>& map,
                  const std::function<void(std::string_view)>& write) {
  run_blocks(
      reader, options,
      [&](int w, std::span<const Line> lines, std::span<std::string> out, size_t& done) {
        for (size_t k = 0; k < lines.size(); ++k, ++done) map(w, lines[k], out[k]);
      },
      write);
}

void run_pipeline_to(LineReader& reader, const PipelineOptions& options,
                     const std::function<void(int, const Line&, std::string&)>& map, Output& out) {
  try {
    run_pipeline(reader, options, map, [&](std::string_view s) { out.write(s); });
  } catch (...) {
    out.commit();
    throw;
  }
  out.commit();
}

void run_pipeline_batched(
    LineReader& reader, const PipelineOptions& options,
    const std::function<void(int, std::span<const Line>, std::span<std::string>)>& map,
    const std::function<void(std::string_view)>& write) {
  run_blocks(
      reader, options,
      [&](int w, std::span<const Line> lines, std::span<std::string> out, size_t&) {
        map(w, lines, out);
      },
      write);
}

}  // namespace oar::nlp::text
