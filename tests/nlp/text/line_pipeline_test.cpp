// The shared line pipeline: UTF-8 checks, reading several files, order across threads and
// batches, and what is written when a line fails.
#include <gtest/gtest.h>

#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "engine/core/error.h"
#include "nlp/text/line_pipeline.h"

namespace oar::nlp::text {
namespace {

std::string temp_file(const std::string& name, const std::string& bytes) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("oar_line_pipeline_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto p = (dir / name).string();
  std::ofstream(p, std::ios::binary) << bytes;
  return p;
}

TEST(Utf8, FirstInvalid) {
  EXPECT_EQ(first_invalid_utf8("abc"), std::string::npos);
  EXPECT_EQ(first_invalid_utf8("北京"), std::string::npos);
  EXPECT_EQ(first_invalid_utf8("a\xff"), 1u);
  EXPECT_EQ(first_invalid_utf8("\xc0\xaf"), 0u);          // overlong '/'
  EXPECT_EQ(first_invalid_utf8("x\xed\xa0\x80"), 1u);     // surrogate U+D800
  EXPECT_EQ(first_invalid_utf8("\xf4\x90\x80\x80"), 0u);  // past U+10FFFF
  EXPECT_EQ(first_invalid_utf8("ab\xe4\xb8"), 2u);        // truncated
  EXPECT_EQ(replace_invalid_utf8("a\xff"
                                 "b\xe4\xb8"),
            "a\xEF\xBF\xBD"
            "b\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(LineReader, FilesInOrderWithLineNumbersAndPolicies) {
  const auto a = temp_file("a.txt", "one\ntwo\n");
  const auto b = temp_file("b.txt", "x\xffy\nlast");  // no final newline
  {
    LineReader r({a, b}, InvalidUtf8::replace);
    Line l;
    std::vector<std::string> got;
    while (r.next(l)) got.push_back(l.where() + "=" + l.text);
    EXPECT_EQ(got, (std::vector<std::string>{a + ":1=one", a + ":2=two", b + ":1=x\xEF\xBF\xBDy",
                                             b + ":2=last"}));
    EXPECT_EQ(r.invalid_lines(), 1);
  }
  {
    LineReader r({b}, InvalidUtf8::skip);
    Line l;
    ASSERT_TRUE(r.next(l));
    EXPECT_EQ(l.text, "last");
    EXPECT_EQ(l.number, 2);
    EXPECT_FALSE(r.next(l));
  }
  {
    LineReader r({a, b}, InvalidUtf8::error);
    Line l;
    ASSERT_TRUE(r.next(l));
    ASSERT_TRUE(r.next(l));
    try {
      r.next(l);
      FAIL() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(b + ":1: invalid UTF-8 at byte 2"), std::string::npos)
          << e.what();
    }
  }
  {
    LineReader r({a}, InvalidUtf8::replace);
    ASSERT_NE(r.peek(), nullptr);
    EXPECT_EQ(r.peek()->text, "one");
    Line l;
    ASSERT_TRUE(r.next(l));
    EXPECT_EQ(l.text, "one");
    r.rewind();
    ASSERT_TRUE(r.next(l));
    EXPECT_EQ(l.text, "one");
  }
  EXPECT_THROW(LineReader({a + ".absent"}, InvalidUtf8::replace), Error);
  EXPECT_THROW(parse_invalid_utf8("ignore"), Error);
}

TEST(Pipeline, OrderKeptAcrossThreadsAndBatches) {
  std::string text;
  for (int i = 0; i < 1000; ++i) text += std::to_string(i) + "\n";
  const auto f = temp_file("many.txt", text);
  for (const int threads : {1, 2, 3, 7}) {
    for (const size_t batch : {size_t(1), size_t(5), size_t(64)}) {
      LineReader r({f}, InvalidUtf8::error);
      std::string got;
      std::vector<int> seen_by(static_cast<size_t>(threads));
      run_pipeline(
          r, {threads, batch},
          [&](int w, const Line& l, std::string& out) {
            ++seen_by[size_t(w)];
            out = std::to_string(std::stoi(l.text) * 2) + "\n";
          },
          [&](std::string_view s) { got += s; });
      std::string want;
      for (int i = 0; i < 1000; ++i) want += std::to_string(2 * i) + "\n";
      EXPECT_EQ(got, want) << threads << " threads, batch " << batch;
      if (threads > 1) {
        EXPECT_GT(seen_by[1], 0);
      }
    }
  }
}

TEST(Pipeline, FailureWritesExactlyTheLinesBefore) {
  std::string text;
  for (int i = 0; i < 100; ++i) text += std::to_string(i) + "\n";
  const auto f = temp_file("fail.txt", text);
  for (const int threads : {1, 4}) {
    LineReader r({f}, InvalidUtf8::error);
    std::string got;
    EXPECT_THROW(run_pipeline(
                     r, {threads, 8},
                     [&](int, const Line& l, std::string& out) {
                       OAR_CHECK(l.text != "37" && l.text != "70", l.where(), ": bad");
                       out = l.text + ",";
                     },
                     [&](std::string_view s) { got += s; }),
                 Error);
    std::string want;
    for (int i = 0; i < 37; ++i) want += std::to_string(i) + ",";
    EXPECT_EQ(got, want) << threads;
  }
  // A fatal invalid line: the lines before it are written, then the error.
  const auto bad = temp_file("bad.txt", "a\nb\n\xff\nc\n");
  LineReader r({bad}, InvalidUtf8::error);
  std::string got;
  EXPECT_THROW(run_pipeline(
                   r, {2, 4}, [](int, const Line& l, std::string& out) { out = l.text; },
                   [&](std::string_view s) { got += s; }),
               Error);
  EXPECT_EQ(got, "ab");
}

TEST(Pipeline, ReadAheadKeepsFailureOrder) {
  // Block i is mapped while block i + 1 is read: an invalid line read ahead must still come out
  // after every line before it, and a mapping failure earlier in the input must win over it.
  std::string text;
  for (int i = 0; i < 100; ++i) text += (i == 50 ? std::string("\xff") : std::to_string(i)) + "\n";
  const auto f = temp_file("ahead.txt", text);
  for (const int threads : {1, 2, 3}) {
    LineReader r({f}, InvalidUtf8::error);
    std::string got;
    try {
      run_pipeline(
          r, {threads, 4}, [](int, const Line& l, std::string& out) { out = l.text + ","; },
          [&](std::string_view s) { got += s; });
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(":51: invalid UTF-8"), std::string::npos) << e.what();
    }
    std::string want;
    for (int i = 0; i < 50; ++i) want += std::to_string(i) + ",";
    EXPECT_EQ(got, want) << threads;

    LineReader r2({f}, InvalidUtf8::error);
    got.clear();
    try {
      run_pipeline(
          r2, {threads, 4},
          [](int, const Line& l, std::string& out) {
            OAR_CHECK(l.text != "45", l.where(), ": bad row");
            out = l.text + ",";
          },
          [&](std::string_view s) { got += s; });
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("bad row"), std::string::npos) << e.what();
    }
    EXPECT_EQ(got, want.substr(0, want.find("45,"))) << threads;
  }
}

TEST(Pipeline, InputsOfExactBlocksAndEmpty) {
  for (const int lines : {0, 1, 8, 16, 17}) {
    std::string text;
    for (int i = 0; i < lines; ++i) text += std::to_string(i) + "\n";
    const auto f = temp_file("exact.txt", text);
    LineReader r({f}, InvalidUtf8::error);
    std::string got;
    run_pipeline(
        r, {2, 4}, [](int, const Line& l, std::string& out) { out = l.text + "\n"; },
        [&](std::string_view s) { got += s; });
    EXPECT_EQ(got, text) << lines;
  }
}

TEST(Pipeline, BatchedFormSeesBatches) {
  std::string text;
  for (int i = 0; i < 50; ++i) text += "l\n";
  const auto f = temp_file("batched.txt", text);
  LineReader r({f}, InvalidUtf8::error);
  size_t lines = 0, max_batch = 0;
  std::mutex m;
  run_pipeline_batched(
      r, {2, 6},
      [&](int, std::span<const Line> in, std::span<std::string> out) {
        std::lock_guard<std::mutex> lock(m);
        max_batch = std::max(max_batch, in.size());
        for (size_t k = 0; k < in.size(); ++k) out[k] = std::to_string(in[k].number) + " ";
      },
      [&](std::string_view) { ++lines; });
  EXPECT_EQ(lines, 50u);
  EXPECT_EQ(max_batch, 6u);
}

TEST(Output, FileIsPublishedOnlyOnCommit) {
  const auto p = temp_file("out.txt", "old\n");
  {
    Output o(p);
    o.write("new\n");
  }  // not committed: the old file stays
  std::ifstream in(p);
  std::string s;
  std::getline(in, s);
  EXPECT_EQ(s, "old");
  {
    Output o(p);
    o.write("new\n");
    o.commit();
  }
  std::ifstream in2(p);
  std::getline(in2, s);
  EXPECT_EQ(s, "new");
}

}  // namespace
}  // namespace oar::nlp::text
