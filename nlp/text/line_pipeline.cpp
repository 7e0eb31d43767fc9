#include "nlp/text/line_pipeline.h"

#include <algorithm>
#include <array>
#include <condition_variable>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
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

// One block's lines, outputs and per-worker failure records.
struct Block {
  std::vector<Line> lines;
  std::vector<std::string> out;
  std::vector<size_t> failed_at;  // per worker: the first line not done when it failed
  std::vector<std::exception_ptr> errors;
  size_t n = 0;
};

// `threads` persistent workers mapping one block at a time while the caller reads the next one
// (the threads live as long as the pipeline, not one block).
class BlockWorkers {
 public:
  BlockWorkers(int threads, size_t batch, const ChunkMap& map) : batch_(batch), map_(map) {
    for (int w = 0; w < threads; ++w) pool_.emplace_back([this, w] { loop(w); });
  }
  BlockWorkers(const BlockWorkers&) = delete;
  BlockWorkers& operator=(const BlockWorkers&) = delete;
  ~BlockWorkers() {
    wait();
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    start_cv_.notify_all();
    for (auto& t : pool_) t.join();
  }

  void start(Block& block) {
    {
      std::lock_guard lock(mu_);
      block_ = &block;
      busy_ = static_cast<int>(pool_.size());
      ++generation_;
    }
    start_cv_.notify_all();
  }

  void wait() {
    std::unique_lock lock(mu_);
    done_cv_.wait(lock, [&] { return busy_ == 0; });
  }

 private:
  void loop(int w) {
    uint64_t seen = 0;
    while (true) {
      Block* block;
      {
        std::unique_lock lock(mu_);
        start_cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        block = block_;
      }
      run(w, *block);
      {
        std::lock_guard lock(mu_);
        if (--busy_ == 0) done_cv_.notify_one();
      }
    }
  }

  void run(int w, Block& block) const {
    const size_t threads = pool_.size(), n = block.n;
    const size_t per = (n + threads - 1) / threads;
    const size_t begin = std::min(n, static_cast<size_t>(w) * per), end = std::min(n, begin + per);
    block.failed_at[size_t(w)] = block.lines.size();
    block.errors[size_t(w)] = nullptr;
    for (size_t b = begin; b < end; b += batch_) {
      const size_t e = std::min(end, b + batch_);
      size_t done = 0;
      try {
        for (size_t k = b; k < e; ++k) block.out[k].clear();
        map_(w, std::span<const Line>(block.lines.data() + b, e - b),
             std::span<std::string>(block.out.data() + b, e - b), done);
      } catch (...) {
        block.failed_at[size_t(w)] = b + done;
        block.errors[size_t(w)] = std::current_exception();
        return;
      }
    }
  }

  const size_t batch_;
  const ChunkMap& map_;
  std::vector<std::thread> pool_;
  std::mutex mu_;
  std::condition_variable start_cv_, done_cv_;
  Block* block_ = nullptr;
  uint64_t generation_ = 0;
  int busy_ = 0;
  bool stop_ = false;
};

void run_blocks(LineReader& reader, const PipelineOptions& options, const ChunkMap& map,
                const std::function<void(std::string_view)>& write) {
  OAR_CHECK(options.batch_size >= 1, "--batch-size must be at least 1, got ", options.batch_size);
  const int threads = resolve_threads(options.threads);
  const size_t size = static_cast<size_t>(threads) * options.batch_size;
  std::array<Block, 2> blocks;
  for (Block& b : blocks) {
    b.lines.resize(size);
    b.out.resize(size);
    b.failed_at.resize(static_cast<size_t>(threads));
    b.errors.resize(static_cast<size_t>(threads));
  }
  BlockWorkers workers(threads, options.batch_size, map);

  // Fills `b` from the reader; a reader failure is kept (with the lines read before it).
  const auto read = [&](Block& b) -> std::exception_ptr {
    b.n = 0;
    try {
      while (b.n < size && reader.next(b.lines[b.n])) ++b.n;
    } catch (...) {
      return std::current_exception();
    }
    return nullptr;
  };
  // Writes the mapped block up to its earliest failure and rethrows that failure.
  const auto write_block = [&](const Block& b) {
    size_t stop = b.n;
    std::exception_ptr error;
    for (size_t w = 0; w < b.errors.size(); ++w)
      if (b.errors[w] && b.failed_at[w] < stop) stop = b.failed_at[w], error = b.errors[w];
    for (size_t k = 0; k < stop; ++k) write(b.out[k]);
    if (error) std::rethrow_exception(error);
  };

  // Block i is mapped by the workers while the caller reads block i + 1, then written.
  std::exception_ptr read_error = read(blocks[0]);
  for (size_t cur = 0;; cur ^= 1) {
    Block& now = blocks[cur];
    Block& next = blocks[cur ^ 1];
    next.n = 0;
    const bool full = now.n == size && !read_error;
    workers.start(now);
    std::exception_ptr next_error = full ? read(next) : nullptr;
    workers.wait();
    write_block(now);  // a failure here comes before anything in `next`
    if (read_error) std::rethrow_exception(read_error);  // the lines before it are written
    if (!full) break;
    read_error = next_error;
    if (next.n == 0 && !read_error) break;
  }
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
