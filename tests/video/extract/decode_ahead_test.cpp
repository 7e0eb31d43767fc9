// decode_ahead: parts arrive in input order whatever the workers' timing, errors become end()
// messages without stopping the others, the queue stays bounded, and a consumer exception stops
// the workers and reaches the caller.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "video/extract/decode_ahead.h"

using namespace oar::video;

namespace {

TEST(DecodeAhead, InOrderWithErrorsAndBounded) {
  std::atomic<int64_t> produced{0}, consumed{0}, max_ahead{0};
  std::vector<std::pair<int64_t, int>> seen;
  std::vector<std::pair<int64_t, std::string>> ends;
  decode_ahead<int>(
      12, 4, 2,
      [&](int64_t i, const std::function<void(int&&)>& emit) {
        // Later items finish first: item i sleeps less the larger it is.
        std::this_thread::sleep_for(std::chrono::milliseconds(12 - i));
        if (i == 5) throw std::runtime_error("item 5 is corrupt");
        for (int p = 0; p < static_cast<int>(i % 4) + 1; ++p) {
          emit(static_cast<int>(i * 10 + p));
          const int64_t ahead = ++produced - consumed.load();
          int64_t m = max_ahead.load();
          while (ahead > m && !max_ahead.compare_exchange_weak(m, ahead)) {
          }
        }
      },
      [&](int64_t i, int&& part) {
        ++consumed;
        seen.emplace_back(i, part);
      },
      [&](int64_t i, const std::string& error) { ends.emplace_back(i, error); });
  ASSERT_EQ(ends.size(), 12u);
  for (int64_t i = 0; i < 12; ++i) {
    EXPECT_EQ(ends[static_cast<size_t>(i)].first, i);
    EXPECT_EQ(ends[static_cast<size_t>(i)].second, i == 5 ? "item 5 is corrupt" : "");
  }
  std::vector<std::pair<int64_t, int>> want;
  for (int64_t i = 0; i < 12; ++i)
    if (i != 5)
      for (int p = 0; p < static_cast<int>(i % 4) + 1; ++p)
        want.emplace_back(i, static_cast<int>(i * 10 + p));
  EXPECT_EQ(seen, want);
  // At most capacity (2) parts for the current item and 2 for later ones, plus the one each
  // consumer call holds.
  EXPECT_LE(max_ahead.load(), 5);
}

TEST(DecodeAhead, ConsumerExceptionStopsWorkers) {
  std::atomic<int64_t> started{0};
  EXPECT_THROW(decode_ahead<int>(
                   1000, 2, 1,
                   [&](int64_t, const std::function<void(int&&)>& emit) {
                     ++started;
                     for (int p = 0; p < 100; ++p) emit(int{p});
                   },
                   [&](int64_t i, int&&) {
                     if (i == 3) throw std::runtime_error("model failed");
                   },
                   [](int64_t, const std::string&) {}),
               std::runtime_error);
  EXPECT_LT(started.load(), 10);
}

TEST(DecodeAhead, NoItems) {
  int calls = 0;
  decode_ahead<int>(
      0, 2, 2, [&](int64_t, const std::function<void(int&&)>&) { ++calls; },
      [&](int64_t, int&&) { ++calls; }, [&](int64_t, const std::string&) { ++calls; });
  EXPECT_EQ(calls, 0);
}

}  // namespace
