#include "engine/io/atomic_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "engine/core/error.h"

namespace fs = std::filesystem;
using namespace oar;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    std::string templ = (fs::temp_directory_path() / "oar_atomic_XXXXXX").string();
    path = ::mkdtemp(templ.data());
  }
  ~TempDir() {
    fs::permissions(path, fs::perms::owner_all, fs::perm_options::add);
    fs::remove_all(path);
  }
};

std::string read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

size_t entries(const fs::path& dir) {
  return static_cast<size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

}  // namespace

TEST(AtomicFile, WritesAndReplaces) {
  TempDir t;
  fs::path p = t.path / "config.yaml";
  io::write_file_atomic(p, "a: 1\n");
  EXPECT_EQ(read(p), "a: 1\n");
  fs::permissions(p, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  io::write_file_atomic(p, "a: 2\n");
  EXPECT_EQ(read(p), "a: 2\n");
  EXPECT_EQ(fs::status(p).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  EXPECT_EQ(entries(t.path), 1u);  // no temp file left behind
}

TEST(AtomicFile, StreamingWriterCommitsOrLeavesTheOldFile) {
  TempDir t;
  fs::path p = t.path / "metrics.jsonl";
  io::write_file_atomic(p, "old\n");
  {
    io::AtomicWriter w(p);
    w.write("new ");
    w.write("text\n");
    EXPECT_EQ(read(p), "old\n");
  }  // destroyed without commit
  EXPECT_EQ(read(p), "old\n");
  EXPECT_EQ(entries(t.path), 1u);
  io::AtomicWriter w(p);
  w.write("new ");
  w.write("text\n");
  w.commit();
  EXPECT_EQ(read(p), "new text\n");
  EXPECT_THROW(w.write("x"), Error);
}

TEST(AtomicFile, FailureNamesThePathAndKeepsTheOldFile) {
  if (::geteuid() == 0) GTEST_SKIP() << "root ignores directory permissions";
  TempDir t;
  fs::path p = t.path / "state.json";
  io::write_file_atomic(p, "{}");
  fs::permissions(t.path, fs::perms::owner_read | fs::perms::owner_exec);
  try {
    io::write_file_atomic(p, "{\"step\": 1}");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "error: " + p.string() +
                  ": cannot create a temporary file in its directory: Permission denied");
  }
  fs::permissions(t.path, fs::perms::owner_all);
  EXPECT_EQ(read(p), "{}");
  EXPECT_EQ(entries(t.path), 1u);
}

TEST(AtomicFile, FailedRenameRemovesTheTempFile) {
  TempDir t;
  fs::path p = t.path / "ckpt";
  fs::create_directories(p / "step-1");
  try {
    io::write_file_atomic(p, "bytes");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "error: " + p.string() + ": cannot replace: Is a directory");
  }
  EXPECT_TRUE(fs::is_directory(p / "step-1"));
  EXPECT_EQ(entries(t.path), 1u);
}

TEST(AtomicFile, MissingDirectory) {
  TempDir t;
  EXPECT_THROW(io::write_file_atomic(t.path / "no" / "x", "1"), Error);
}
