#pragma once
// Decoding on worker threads, overlapped with inference on the calling thread, with results
// handed over in input order through a bounded queue.
//
// produce(i, emit) runs on one of `workers` threads for every item i in [0, n) (items are taken
// in order) and calls emit(part) zero or more times; consume(i, part) then runs on the calling
// thread for each part, items in input order and parts in emit order, and end(i, error) once
// after item i's last part (error: "" or what produce threw). At most `capacity` parts wait for
// items after the one being consumed, plus `capacity` for that item, so memory stays bounded
// however long a video is. If consume or end throws, the workers stop at their next emit and
// the exception reaches the caller after they have been joined.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace oar::video {

template <typename Part>
void decode_ahead(int64_t n, int workers, int64_t capacity,
                  const std::function<void(int64_t, const std::function<void(Part&&)>&)>& produce,
                  const std::function<void(int64_t, Part&&)>& consume,
                  const std::function<void(int64_t, const std::string&)>& end) {
  struct Slot {
    std::deque<Part> parts;
    bool ended = false;
    std::string error;
  };
  struct Stopped {};
  std::mutex mu;
  std::condition_variable cv;
  std::map<int64_t, Slot> slots;
  int64_t next = 0, current = 0, waiting_ahead = 0;
  bool stop = false;
  if (workers < 1) workers = 1;
  if (capacity < 1) capacity = 1;

  auto work = [&] {
    for (;;) {
      int64_t i;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (stop || next >= n) return;
        i = next++;
        slots[i];
      }
      std::string error;
      auto emit = [&](Part&& part) {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] {
          return stop || (i == current && static_cast<int64_t>(slots[i].parts.size()) < capacity) ||
                 (i != current && waiting_ahead < capacity);
        });
        if (stop) throw Stopped{};
        if (i != current) ++waiting_ahead;
        slots[i].parts.push_back(std::move(part));
        cv.notify_all();
      };
      try {
        produce(i, emit);
      } catch (const Stopped&) {
        return;
      } catch (const std::exception& e) {
        error = e.what();
        if (error.empty()) error = "failed";
      } catch (...) {
        error = "unknown error";
      }
      std::lock_guard<std::mutex> lock(mu);
      slots[i].ended = true;
      slots[i].error = error;
      cv.notify_all();
    }
  };

  std::vector<std::thread> threads;
  for (int w = 0; w < workers && w < n; ++w) threads.emplace_back(work);
  auto join = [&] {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
      cv.notify_all();
    }
    for (auto& t : threads) t.join();
  };
  try {
    while (current < n) {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] {
        auto it = slots.find(current);
        return it != slots.end() && (!it->second.parts.empty() || it->second.ended);
      });
      Slot& s = slots[current];
      if (!s.parts.empty()) {
        Part part = std::move(s.parts.front());
        s.parts.pop_front();
        cv.notify_all();
        lock.unlock();
        consume(current, std::move(part));
        continue;
      }
      const std::string error = s.error;
      const int64_t i = current;
      slots.erase(current);
      ++current;
      // Parts that were waiting ahead now belong to the current item.
      auto it = slots.find(current);
      if (it != slots.end()) waiting_ahead -= static_cast<int64_t>(it->second.parts.size());
      cv.notify_all();
      lock.unlock();
      end(i, error);
    }
  } catch (...) {
    join();
    throw;
  }
  join();
}

}  // namespace oar::video
