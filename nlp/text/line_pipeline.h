#pragma once
// The streaming line pipeline shared by every `oar text` tool: lines of several files (or stdin)
// are read one block at a time, checked for UTF-8 (replaced, skipped or fatal, each report naming
// file:line), mapped by persistent worker threads that each take a contiguous slice of the block
// while the next block is read, and written in input order. Memory is two blocks (threads x batch
// lines each), whatever the input size.
#include <cstdint>
#include <cstdio>
#include <functional>
#include <istream>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace oar::io {
class AtomicWriter;
}

namespace oar::nlp::text {

enum class InvalidUtf8 { replace, skip, error };
// "replace" | "skip" | "error"; anything else is an oar::Error listing those.
InvalidUtf8 parse_invalid_utf8(const std::string& s);

// Byte offset of the first ill-formed UTF-8 byte at or after `from`, or npos. Overlong forms,
// surrogates and code points past U+10FFFF are ill-formed, as in the Unicode standard.
size_t first_invalid_utf8(std::string_view s, size_t from = 0);
// Each ill-formed byte becomes U+FFFD.
std::string replace_invalid_utf8(std::string_view s);

// A line with where it came from (1-based line number); `file` is "<stdin>" for standard input.
struct Line {
  std::string text;
  const std::string* file = nullptr;
  int64_t number = 0;
  std::string where() const;  // "file:line"
};

// Reads the lines of `inputs` in order ("-" or none: stdin), without their '\n' (a trailing '\r'
// is kept: it is data). Invalid UTF-8 is handled by `policy`; warnings go to stderr, the first 20
// one by one, then a count at the end. With `error`, next() throws an oar::Error naming
// file:line:byte. Missing inputs are reported by the constructor, before anything is read.
class LineReader {
 public:
  LineReader(std::vector<std::string> inputs, InvalidUtf8 policy);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // The next line into `line`; false at the end of the last input.
  bool next(Line& line);
  // The line next() will return, read ahead (nullptr at the end); e.g. a TSV header.
  const Line* peek();
  // Starts again from the first input (for two-pass tools; stdin cannot rewind: an error).
  void rewind();
  int64_t invalid_lines() const { return invalid_lines_; }
  // Prints the count of invalid lines not reported one by one (call once, at the end).
  void report_remaining() const;
  const std::vector<std::string>& inputs() const { return inputs_; }
  // When true, warnings are not printed (the second pass of two-pass tools).
  void set_quiet(bool quiet) { quiet_ = quiet; }

 private:
  bool open_next();
  bool read(Line& line);
  std::optional<Line> peeked_;
  std::vector<std::string> inputs_;
  std::vector<std::string> names_;
  InvalidUtf8 policy_;
  size_t current_ = 0;
  std::unique_ptr<std::istream> file_;
  std::istream* in_ = nullptr;
  int64_t lineno_ = 0;
  int64_t invalid_lines_ = 0, warned_ = 0;
  bool quiet_ = false;
};

// Where output goes: a file written atomically (published by commit(); destroyed uncommitted, it
// leaves the old file untouched), or stdout (empty path or "-").
class Output {
 public:
  explicit Output(const std::string& path);
  ~Output();
  void write(std::string_view bytes);
  void commit();
  bool is_file() const { return file_ != nullptr; }

 private:
  std::unique_ptr<io::AtomicWriter> file_;
};

struct PipelineOptions {
  int threads = 1;          // 0: hardware concurrency
  size_t batch_size = 256;  // lines per worker per block
};

// Resolves threads = 0 to the hardware concurrency.
int resolve_threads(int threads);

// Calls `map(worker, line, out)` for every line on `threads` workers (worker in [0, threads);
// a worker runs one call at a time, so per-worker state needs no lock) and `write(out)` for each
// line's output in input order. An exception from `map` or from the reader stops the pipeline
// after the lines before it were written, and is rethrown.
void run_pipeline(LineReader& reader, const PipelineOptions& options,
                  const std::function<void(int worker, const Line& line, std::string& out)>& map,
                  const std::function<void(std::string_view out)>& write);

// run_pipeline into `out`, committed at the end. When a line fails (invalid UTF-8 with `error`, a
// malformed row), the lines before it are committed, as on stdout, and the error is rethrown:
// the output is always whole lines, a prefix of the full result, never a torn file.
void run_pipeline_to(LineReader& reader, const PipelineOptions& options,
                     const std::function<void(int worker, const Line& line, std::string& out)>& map,
                     Output& out);

// The batched form, for models that take several lines per call: `map` gets up to batch_size
// consecutive lines and fills their outputs; on an exception none of that batch is written.
void run_pipeline_batched(LineReader& reader, const PipelineOptions& options,
                          const std::function<void(int worker, std::span<const Line> lines,
                                                   std::span<std::string> out)>& map,
                          const std::function<void(std::string_view out)>& write);

}  // namespace oar::nlp::text
