#pragma once
// Atomic file writes: a reader sees the old file or the new one, never a torn mix, and a failed
// write leaves the old file as it was. Temp file in the same directory, fsync, rename, fsync dir.
#include <filesystem>
#include <string>
#include <string_view>

namespace oar::io {

// Replaces `path` with `bytes`. Throws oar::Error naming the path and the errno text on failure;
// then the old file (if any) is untouched and no temp file is left behind.
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes);

// Streaming form: write() pieces, then commit() to publish. Destroying an uncommitted writer
// (or abort()) removes the temp file and leaves the target untouched.
class AtomicWriter {
 public:
  explicit AtomicWriter(std::filesystem::path path);
  ~AtomicWriter();
  AtomicWriter(const AtomicWriter&) = delete;
  AtomicWriter& operator=(const AtomicWriter&) = delete;

  void write(std::string_view bytes);
  void commit();
  void abort() noexcept;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  std::filesystem::path temp_;
  int fd_ = -1;
};

}  // namespace oar::io
