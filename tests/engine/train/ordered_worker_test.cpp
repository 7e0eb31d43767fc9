// OrderedWorker (DeviceBatches' copy thread): jobs run one at a time in the order posted, on
// another thread; wait() returns after its job and rethrows that job's error (and only that
// job's); the destructor runs what is still queued.
#include "engine/train/ordered_worker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>

#include "engine/core/error.h"

using namespace oar;

TEST(OrderedWorker, RunsJobsInOrderOnItsOwnThread) {
  std::vector<int> ran;  // written by the worker only; read after wait()
  std::thread::id worker_id;
  int64_t last = 0;
  {
    OrderedWorker w;
    for (int i = 0; i < 50; ++i)
      last = w.post([&, i] {
        if (i == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));  // others queue
        worker_id = std::this_thread::get_id();
        ran.push_back(i);
      });
    EXPECT_EQ(last, 50);
    w.wait(last);
    ASSERT_EQ(ran.size(), 50u);
    for (int i = 0; i < 50; ++i) EXPECT_EQ(ran[static_cast<size_t>(i)], i);
    EXPECT_NE(worker_id, std::this_thread::get_id());
    w.wait(3);  // long done: returns at once
  }
}

TEST(OrderedWorker, WaitRethrowsTheErrorOfItsOwnJob) {
  OrderedWorker w;
  std::atomic<int> after{0};
  const int64_t a = w.post([] {});
  const int64_t b = w.post([] { throw std::runtime_error("copy failed"); });
  const int64_t c = w.post([&] { after = 1; });  // the worker goes on after a failed job
  w.wait(c);
  EXPECT_EQ(after.load(), 1);
  EXPECT_NO_THROW(w.wait(a));
  try {
    w.wait(b);
    FAIL() << "the error was lost";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "copy failed");
  }
  EXPECT_NO_THROW(w.wait(b));          // reported once
  EXPECT_THROW(w.wait(c + 1), Error);  // never posted: an error, not a hang
}

TEST(OrderedWorker, DestructorRunsWhatIsQueued) {
  std::atomic<int> count{0};
  {
    OrderedWorker w;
    w.post([&] { std::this_thread::sleep_for(std::chrono::milliseconds(20)); });
    for (int i = 0; i < 10; ++i) w.post([&] { ++count; });
  }
  EXPECT_EQ(count.load(), 10);
}
