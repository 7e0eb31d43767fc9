#include "engine/train/ordered_worker.h"

#include "engine/core/error.h"

namespace oar {

OrderedWorker::OrderedWorker() : thread_([this] { loop(); }) {}

OrderedWorker::~OrderedWorker() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

int64_t OrderedWorker::post(std::function<void()> job) {
  std::lock_guard<std::mutex> lock(mu_);
  jobs_.push_back(std::move(job));
  cv_.notify_all();
  return ++posted_;
}

void OrderedWorker::wait(int64_t ticket) {
  std::unique_lock<std::mutex> lock(mu_);
  OAR_CHECK(ticket >= 1 && ticket <= posted_, "OrderedWorker: no job ", ticket);
  cv_.wait(lock, [&] { return done_ >= ticket; });
  for (auto it = errors_.begin(); it != errors_.end(); ++it)
    if (it->first == ticket) {
      std::exception_ptr e = it->second;
      errors_.erase(it);
      std::rethrow_exception(e);
    }
}

void OrderedWorker::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
    if (jobs_.empty()) return;  // stopped, and nothing left to run
    std::function<void()> job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    std::exception_ptr error;
    try {
      job();
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    ++done_;
    if (error) errors_.emplace_back(done_, error);
    cv_.notify_all();
  }
}

}  // namespace oar
