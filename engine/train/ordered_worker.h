#pragma once
// A thread that runs posted jobs one at a time, in the order posted (DeviceBatches' copy thread).
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace oar {

// post() returns the job's ticket (1, 2, ...); wait(ticket) returns once that job has run and
// rethrows what it threw (once). The destructor runs the jobs still queued, then joins.
class OrderedWorker {
 public:
  OrderedWorker();
  ~OrderedWorker();
  OrderedWorker(const OrderedWorker&) = delete;
  OrderedWorker& operator=(const OrderedWorker&) = delete;
  int64_t post(std::function<void()> job);
  void wait(int64_t ticket);

 private:
  void loop();
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  int64_t posted_ = 0, done_ = 0;
  std::vector<std::pair<int64_t, std::exception_ptr>> errors_;  // failed tickets not yet waited
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace oar
