#include "engine/io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "engine/core/error.h"

namespace oar::io {
namespace {

[[noreturn]] void fail(const std::string& what, const std::filesystem::path& path, int err) {
  OAR_FAIL("error: ", path.string(), ": ", what, ": ", std::strerror(err));
}

void fsync_dir(const std::filesystem::path& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;  // Some filesystems refuse to open directories; the rename already happened.
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

AtomicWriter::AtomicWriter(std::filesystem::path path) : path_(std::move(path)) {
  std::filesystem::path dir = path_.parent_path();
  std::string name = ".";
  name.append(path_.filename().string()).append(".tmp.XXXXXX");
  std::string templ = (dir / name).string();
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  fd_ = ::mkstemp(buf.data());
  if (fd_ < 0) fail("cannot create a temporary file in its directory", path_, errno);
  temp_ = buf.data();
  // mkstemp creates 0600: keep the replaced file's mode, or give a new file the usual 0644
  // (umask cannot be read without changing it, which would race with other threads).
  struct stat st;
  ::fchmod(fd_, ::stat(path_.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0644);
}

AtomicWriter::~AtomicWriter() {
  abort();
}

void AtomicWriter::write(std::string_view bytes) {
  OAR_CHECK(fd_ >= 0, "error: ", path_.string(), ": write after commit or abort");
  const char* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      abort();
      fail("cannot write", path_, err);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
}

void AtomicWriter::commit() {
  OAR_CHECK(fd_ >= 0, "error: ", path_.string(), ": commit after commit or abort");
  if (::fsync(fd_) != 0) {
    int err = errno;
    abort();
    fail("cannot flush to disk", path_, err);
  }
  if (::close(fd_) != 0) {
    int err = errno;
    fd_ = -1;
    abort();
    fail("cannot close", path_, err);
  }
  fd_ = -1;
  if (::rename(temp_.c_str(), path_.c_str()) != 0) {
    int err = errno;
    ::unlink(temp_.c_str());
    temp_.clear();
    fail("cannot replace", path_, err);
  }
  temp_.clear();
  fsync_dir(path_.parent_path());
}

void AtomicWriter::abort() noexcept {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (!temp_.empty()) {
    ::unlink(temp_.c_str());
    temp_.clear();
  }
}

void write_file_atomic(const std::filesystem::path& path, std::string_view bytes) {
  AtomicWriter w(path);
  w.write(bytes);
  w.commit();
}

}  // namespace oar::io
