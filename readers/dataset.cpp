#include "readers/dataset.h"

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <numeric>
#include <thread>

#include <omp.h>

#include "engine/autograd/grad_mode.h"
#include "engine/core/error.h"
#include "engine/ops/join.h"

namespace oar::readers {

Batch collate_stack(std::vector<Example>& examples) {
  OAR_CHECK(!examples.empty(), "collate: empty batch");
  Batch b;
  b.size = static_cast<int64_t>(examples.size());
  for (const auto& [key, first] : examples[0].fields) {
    std::vector<Tensor> parts;
    parts.reserve(examples.size());
    for (size_t i = 0; i < examples.size(); ++i) {
      auto it = examples[i].fields.find(key);
      OAR_CHECK(it != examples[i].fields.end(), "collate: sample ", i, " has no field '", key, "'");
      OAR_CHECK(it->second.shape() == first.shape() && it->second.dtype() == first.dtype(),
                "collate: field '", key, "' of sample ", i, " has shape ",
                shape_str(it->second.shape()), " ", dtype_name(it->second.dtype()),
                " but sample 0 has ", shape_str(first.shape()), " ", dtype_name(first.dtype()));
      parts.push_back(it->second);
    }
    b.tensors[key] = stack(parts, 0);
  }
  for (auto& e : examples) b.meta.push_back(std::move(e.meta));
  return b;
}

Batch Dataset::collate(std::vector<Example>& examples) const {
  return collate_stack(examples);
}

std::vector<int64_t> epoch_order(int64_t n, bool shuffle, uint64_t seed, int64_t epoch, int rank,
                                 int world_size) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  if (shuffle) {  // Fisher-Yates from a counter-based stream of (seed, epoch)
    const uint64_t s = Generator::hash(seed, 0x5eed0000ull + static_cast<uint64_t>(epoch));
    for (int64_t i = n - 1; i > 0; --i) {
      const int64_t j = static_cast<int64_t>(Generator::hash(s, static_cast<uint64_t>(i)) %
                                             static_cast<uint64_t>(i + 1));
      std::swap(order[i], order[j]);
    }
  }
  if (world_size <= 1) return order;
  const int64_t per_rank = (n + world_size - 1) / world_size;
  std::vector<int64_t> mine;
  mine.reserve(static_cast<size_t>(per_rank));
  for (int64_t k = 0; k < per_rank; ++k) {
    const int64_t pos = (k * world_size + rank) % std::max<int64_t>(n, 1);  // pad by wrapping
    mine.push_back(order[pos]);
  }
  return mine;
}

std::vector<int64_t> bucket_by_length(const std::vector<int64_t>& order,
                                      const std::function<int64_t(int64_t)>& length,
                                      int64_t batch_size, int64_t window_batches, uint64_t seed,
                                      int64_t epoch) {
  OAR_CHECK(batch_size >= 1 && window_batches >= 1,
            "length bucketing: batch_size and the window must be at least 1");
  const int64_t n = static_cast<int64_t>(order.size());
  const int64_t window = batch_size * window_batches;
  std::vector<int64_t> sorted = order;
  for (int64_t w0 = 0; w0 < n; w0 += window) {
    auto first = sorted.begin() + w0, last = sorted.begin() + std::min(n, w0 + window);
    std::vector<std::pair<int64_t, int64_t>> keyed;  // (length, index)
    keyed.reserve(static_cast<size_t>(last - first));
    for (auto it = first; it != last; ++it) keyed.emplace_back(length(*it), *it);
    std::stable_sort(keyed.begin(), keyed.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    for (size_t i = 0; i < keyed.size(); ++i) first[static_cast<int64_t>(i)] = keyed[i].second;
  }
  // Shuffle the full batches (Fisher-Yates from a stream of its own); the remainder stays last.
  const int64_t full = n / batch_size;
  std::vector<int64_t> batches(static_cast<size_t>(full));
  std::iota(batches.begin(), batches.end(), 0);
  const uint64_t s = Generator::hash(seed, 0xb0c4e70000ull + static_cast<uint64_t>(epoch));
  for (int64_t i = full - 1; i > 0; --i) {
    const int64_t j = static_cast<int64_t>(Generator::hash(s, static_cast<uint64_t>(i)) %
                                           static_cast<uint64_t>(i + 1));
    std::swap(batches[static_cast<size_t>(i)], batches[static_cast<size_t>(j)]);
  }
  std::vector<int64_t> out;
  out.reserve(order.size());
  for (int64_t b : batches)
    out.insert(out.end(), sorted.begin() + b * batch_size, sorted.begin() + (b + 1) * batch_size);
  out.insert(out.end(), sorted.begin() + full * batch_size, sorted.end());
  return out;
}

// Workers claim batch numbers in order and park results in slots; next() hands them out in
// order. The window (next + workers * prefetch) bounds memory.
struct DataLoader::State {
  std::mutex mu;
  std::condition_variable cv;
  std::map<int64_t, Batch> ready;
  std::exception_ptr error;
  int64_t error_batch = -1;
  int64_t claim = 0;     // next batch a worker will load
  int64_t consumed = 0;  // next batch next() returns
  int64_t end = 0;
  int64_t window = 8;
  bool stop = false;
  std::vector<std::thread> threads;
};

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, LoaderOptions options,
                       CollateFn collate)
    : dataset_(std::move(dataset)), opt_(options), collate_(std::move(collate)) {
  OAR_CHECK(dataset_ != nullptr, "data loader: no dataset");
  if (!collate_) {
    const Dataset* d = dataset_.get();
    collate_ = [d](std::vector<Example>& ex) { return d->collate(ex); };
  }
  OAR_CHECK(opt_.batch_size >= 1, "data loader: batch_size must be at least 1, got ",
            opt_.batch_size);
  OAR_CHECK(opt_.num_workers >= 0, "data loader: num_workers must be >= 0");
  OAR_CHECK(opt_.bucket >= 0, "data loader: bucket must be >= 0, got ", opt_.bucket);
  OAR_CHECK(opt_.bucket == 0 || dataset_->size() == 0 || dataset_->length(0) >= 0,
            "data loader: bucket needs example lengths, which this reader does not give (use "
            "bucket: 0)");
  OAR_CHECK(opt_.world_size >= 1 && opt_.rank >= 0 && opt_.rank < opt_.world_size,
            "data loader: rank ", opt_.rank, " out of range for world size ", opt_.world_size);
}

DataLoader::~DataLoader() {
  stop_workers();
}

int64_t DataLoader::num_samples() const {
  int64_t n = dataset_->size();
  if (opt_.limit > 0) n = std::min(n, opt_.limit);
  if (opt_.world_size > 1) n = (n + opt_.world_size - 1) / opt_.world_size;
  return n;
}

int64_t DataLoader::num_batches() const {
  const int64_t n = num_samples();
  return opt_.drop_last ? n / opt_.batch_size : (n + opt_.batch_size - 1) / opt_.batch_size;
}

Batch DataLoader::load_batch(int64_t b) const {
  NoGradGuard no_grad;
  const int64_t begin = b * opt_.batch_size;
  const int64_t end =
      std::min<int64_t>(begin + opt_.batch_size, static_cast<int64_t>(order_.size()));
  std::vector<Example> ex;
  ex.reserve(static_cast<size_t>(end - begin));
  for (int64_t i = begin; i < end; ++i) {
    const int64_t idx = order_[static_cast<size_t>(i)];
    Generator rng(Generator::hash(
        opt_.seed ^ 0xda7aull,
        static_cast<uint64_t>(epoch_) * 0x100000001b3ull + static_cast<uint64_t>(idx)));
    ex.push_back(dataset_->get(idx, rng));
  }
  return collate_(ex);
}

void DataLoader::stop_workers() {
  if (!state_) return;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->stop = true;
  }
  state_->cv.notify_all();
  for (auto& t : state_->threads) t.join();
  state_.reset();
}

void DataLoader::start_epoch(int64_t epoch, int64_t skip_batches) {
  stop_workers();
  epoch_ = epoch;
  int64_t n = dataset_->size();
  if (opt_.limit > 0) n = std::min(n, opt_.limit);
  order_ = epoch_order(n, opt_.shuffle, opt_.seed, epoch, opt_.rank, opt_.world_size);
  if (opt_.bucket > 0 && opt_.shuffle) {
    const Dataset* d = dataset_.get();
    order_ = bucket_by_length(
        order_, [d](int64_t i) { return d->length(i); }, opt_.batch_size, opt_.bucket, opt_.seed,
        epoch);
  }
  next_batch_ = std::min(skip_batches, num_batches());
  if (opt_.num_workers == 0) return;
  state_ = std::make_unique<State>();
  State& st = *state_;
  st.claim = st.consumed = next_batch_;
  st.end = num_batches();
  st.window = static_cast<int64_t>(opt_.num_workers) * std::max(1, opt_.prefetch);
  for (int w = 0; w < opt_.num_workers; ++w) {
    st.threads.emplace_back([this, &st] {
      // Loader threads are the parallelism here: ops they run (e.g. stacking a batch) stay on
      // this thread instead of waking an OpenMP team that would spin against the others.
      omp_set_num_threads(1);
      while (true) {
        int64_t b;
        {
          std::unique_lock<std::mutex> lock(st.mu);
          st.cv.wait(lock, [&] {
            return st.stop || st.error || st.claim >= st.end || st.claim < st.consumed + st.window;
          });
          if (st.stop || st.error || st.claim >= st.end) return;
          b = st.claim++;
        }
        try {
          Batch batch = load_batch(b);
          std::lock_guard<std::mutex> lock(st.mu);
          st.ready.emplace(b, std::move(batch));
        } catch (...) {
          std::lock_guard<std::mutex> lock(st.mu);
          if (!st.error) {
            st.error = std::current_exception();
            st.error_batch = b;
          }
        }
        st.cv.notify_all();
      }
    });
  }
}

bool DataLoader::next(Batch& out) {
  if (next_batch_ >= num_batches()) return false;
  if (!state_) {
    out = load_batch(next_batch_++);
    return true;
  }
  State& st = *state_;
  std::unique_lock<std::mutex> lock(st.mu);
  st.cv.wait(lock, [&] { return st.ready.count(next_batch_) || st.error; });
  if (!st.ready.count(next_batch_) && st.error) {
    std::exception_ptr e = st.error;
    lock.unlock();
    stop_workers();
    std::rethrow_exception(e);
  }
  out = std::move(st.ready[next_batch_]);
  st.ready.erase(next_batch_);
  ++next_batch_;
  st.consumed = next_batch_;
  lock.unlock();
  st.cv.notify_all();
  return true;
}

}  // namespace oar::readers
