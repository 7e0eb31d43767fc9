// The video-tag output file: appends whole lines, cuts off a partial last line, knows which
// videos are done (errors count unless retried), and rejects a file that is not ours.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "engine/core/error.h"
#include "tests/video/tagging/tagging_support.h"
#include "video/tagging/tag_output.h"

using namespace oar;
using namespace oar::video;
using oar::video::testing::TempDir;

namespace {

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Json rec(const std::string& path, bool error) {
  Json r = Json::object();
  r["path"] = path;
  if (error) r["error"] = "bad";
  return r;
}

TEST(TagOutput, AppendsResumesAndRepairs) {
  TempDir d("tag_output");
  const auto f = d.path / "sub" / "tags.jsonl";
  {
    TagOutput out(f.string());
    EXPECT_EQ(out.tagged(), 0);
    out.write(rec("a.mp4", false));
    out.write(rec("b.mp4", true));
  }
  const std::string two = rec("a.mp4", false).dump() + "\n" + rec("b.mp4", true).dump() + "\n";
  EXPECT_EQ(slurp(f), two);
  std::ofstream(f, std::ios::app) << "{\"path\":\"c.m";
  {
    TagOutput out(f.string());
    EXPECT_EQ(out.repaired_bytes(), 12);
    EXPECT_TRUE(out.done("a.mp4"));
    EXPECT_TRUE(out.done("b.mp4"));
    EXPECT_FALSE(out.done("b.mp4", false));  // retrying errors
    EXPECT_FALSE(out.done("c.mp4"));
    EXPECT_EQ(out.tagged(), 1);
    EXPECT_EQ(out.failed(), 1);
    out.write(rec("b.mp4", false));  // a retry that worked
    EXPECT_EQ(out.failed(), 1);
  }
  {
    TagOutput out(f.string());
    EXPECT_EQ(out.repaired_bytes(), 0);
    EXPECT_EQ(out.tagged(), 2);
    EXPECT_EQ(out.failed(), 0);  // b.mp4 has a good record now
  }
  EXPECT_EQ(slurp(f), two + rec("b.mp4", false).dump() + "\n");
}

TEST(TagOutput, ForeignFileIsAnErrorNamingTheLine) {
  TempDir d("tag_output_bad");
  const auto f = d.path / "t.jsonl";
  std::ofstream(f) << "{\"path\":\"a.mp4\"}\n[1, 2]\n";
  try {
    TagOutput out(f.string());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("t.jsonl:2"), std::string::npos) << e.what();
  }
}

}  // namespace
