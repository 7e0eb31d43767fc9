#pragma once
// The JSON-lines file `oar video-tag` appends to, one record per video. Each record is one
// write(2) of a whole line on a file opened O_APPEND, so a killed run leaves at most one partial
// last line; opening the file again cuts that line off and reads which videos already have a
// record, so a re-run skips them.
#include <cstdint>
#include <set>
#include <string>

#include "engine/io/json.h"

namespace oar::video {

class TagOutput {
 public:
  // Opens (creating) `path` for appending; "-" writes to stdout (nothing to resume). A line that
  // is not a JSON object with a "path" is an oar::Error naming path:line.
  explicit TagOutput(const std::string& path);
  ~TagOutput();
  TagOutput(const TagOutput&) = delete;
  TagOutput& operator=(const TagOutput&) = delete;

  // Whether `video` already has a record: a tagged one, or (with errors) an error record too.
  bool done(const std::string& video, bool errors = true) const;
  int64_t tagged() const { return static_cast<int64_t>(tagged_.size()); }
  int64_t failed() const { return static_cast<int64_t>(failed_.size()); }
  // Bytes of a partial last line that opening cut off (0: the file was whole).
  int64_t repaired_bytes() const { return repaired_; }

  // Appends one record as one line; throws naming the file when the write fails.
  void write(const Json& record);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
  std::set<std::string> tagged_, failed_;
  int64_t repaired_ = 0;
};

}  // namespace oar::video
