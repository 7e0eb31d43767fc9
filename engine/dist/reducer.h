#pragma once
// Data-parallel gradient averaging that overlaps backward: parameters are packed into buckets of
// about bucket_mb in reverse registration order (roughly the order backward produces their
// gradients, as in PyTorch DDP); a leaf's grad hook copies its gradient into its bucket once it
// is final, and a background thread allreduces each bucket as soon as it is full, always in
// bucket order so every rank issues the same sequence of collectives.
//
// A gradient is "final" after as many accumulations as in the first synchronised step (learnt
// then, with no overlap), which handles tied weights; a graph that changes between steps is
// reported, not silently mis-averaged.
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "engine/dist/process_group.h"

namespace oar::dist {

class GradReducer {
 public:
  // group: a group of its own (ProcessGroup::new_group), used only from the reducer's thread.
  GradReducer(std::vector<Tensor> params, std::unique_ptr<ProcessGroup> group, double bucket_mb);
  ~GradReducer();
  GradReducer(const GradReducer&) = delete;
  GradReducer& operator=(const GradReducer&) = delete;

  // Before each backward: sync=false lets gradients accumulate locally (the first micro-batches
  // of gradient accumulation); sync=true reduces during this backward.
  void prepare(bool sync);
  // After a synchronised backward: reduces what is left, waits, and leaves every parameter's
  // .grad averaged over ranks. Rethrows a collective's error.
  void finish();

  int num_buckets() const { return static_cast<int>(buckets_.size()); }

 private:
  struct Bucket {
    std::vector<int> params;
    std::vector<int64_t> offsets;
    int64_t numel = 0;
    Tensor buffer;
    int pending = 0;
  };
  void on_grad(int i);
  void copy_in(int i);
  void mark_ready(int b);
  void loop();

  std::vector<Tensor> params_;
  std::unique_ptr<ProcessGroup> group_;
  std::vector<Bucket> buckets_;
  std::vector<int> bucket_of_, slot_of_;
  std::vector<int> count_, expected_;
  std::vector<char> copied_;
  bool calibrated_ = false, armed_ = false;
  int overrun_ = -1;  // a parameter that got more gradients than expected

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<char> ready_;
  int next_ = 0;
  bool active_ = false, stop_ = false;
  std::exception_ptr error_;
  std::thread thread_;
  std::vector<size_t> hook_index_;
};

}  // namespace oar::dist
