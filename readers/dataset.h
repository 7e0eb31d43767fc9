#pragma once
// Datasets and the data loader shared by every domain.
//
// A Dataset returns one Example by index. Random transforms draw only from the generator they
// are handed, which the loader seeds from (seed, epoch, index): results do not depend on worker
// threads or scheduling, and a resumed run sees exactly the samples it would have seen.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/core/generator.h"
#include "engine/io/json.h"
#include "engine/train/batch.h"

namespace oar::readers {

struct Example {
  std::map<std::string, Tensor> fields;
  Json meta;  // per-sample record (path, id, text), echoed by predictions
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual Example get(int64_t index, Generator& rng) const = 0;
  // Joins examples into a batch; the default stacks every field (text readers pad instead).
  virtual Batch collate(std::vector<Example>& examples) const;
  // The padded length example `index` adds to a batch (tokens, for text readers), which length
  // bucketing sorts by; -1 (the default): unknown, and the dataset cannot be bucketed.
  virtual int64_t length(int64_t index) const { return -1; }
};

// Stacks each field along a new leading dimension; every example must have the same fields and
// shapes (the error names the field and the sample).
Batch collate_stack(std::vector<Example>& examples);
using CollateFn = std::function<Batch(std::vector<Example>&)>;

struct LoaderOptions {
  int64_t batch_size = 32;
  bool shuffle = false;
  bool drop_last = false;
  int num_workers = 2;  // 0 loads on the calling thread
  int prefetch = 4;     // batches loaded ahead per worker
  uint64_t seed = 0;
  int rank = 0;  // distributed sampler: this rank's disjoint shard
  int world_size = 1;
  int64_t limit = 0;  // use only the first `limit` samples (0: all)
  // Length bucketing (needs Dataset::length and shuffle): the epoch's order is cut into windows
  // of `bucket` batches, each window sorted by length and cut into batches, and the batches are
  // shuffled (seeded), so a batch holds examples of similar length and pads little. 0: off.
  int64_t bucket = 0;
};

// The per-epoch order: a permutation of [0, n) from (seed, epoch) when shuffling; with several
// ranks, each takes every world_size-th index of the (padded) order so shards are disjoint and
// equally long.
std::vector<int64_t> epoch_order(int64_t n, bool shuffle, uint64_t seed, int64_t epoch, int rank,
                                 int world_size);

// `order` regrouped for length bucketing: windows of window_batches * batch_size indices, each
// sorted by length (stable, longest first) and cut into batches; the full batches are shuffled
// from (seed, epoch) and a last incomplete batch stays last. Every index appears exactly once.
std::vector<int64_t> bucket_by_length(const std::vector<int64_t>& order,
                                      const std::function<int64_t(int64_t)>& length,
                                      int64_t batch_size, int64_t window_batches, uint64_t seed,
                                      int64_t epoch);

class DataLoader : public BatchSource {
 public:
  // An empty collate uses the dataset's own.
  DataLoader(std::shared_ptr<const Dataset> dataset, LoaderOptions options, CollateFn collate = {});
  ~DataLoader() override;

  int64_t num_samples() const override;
  int64_t num_batches() const override;
  void start_epoch(int64_t epoch, int64_t skip_batches = 0) override;
  bool next(Batch& out) override;

 private:
  struct State;
  Batch load_batch(int64_t b) const;
  void stop_workers();
  std::shared_ptr<const Dataset> dataset_;
  LoaderOptions opt_;
  CollateFn collate_;
  std::vector<int64_t> order_;
  int64_t epoch_ = 0;
  int64_t next_batch_ = 0;
  std::unique_ptr<State> state_;
};

}  // namespace oar::readers
