#pragma once
// Batches on the model's device. DeviceBatches wraps a host BatchSource and hands out each batch
// with its tensors on `device`. On CUDA the next batch is copied while the current step computes:
// the training thread takes the host batch from the source and hands it to DeviceBatches' copy
// thread, which stages its tensors in pinned host memory and queues their copies on the device's
// copy stream (cuda::copy_stream). When the batch is handed out, the training thread waits only
// for that copy's event (and the compute stream waits for it on the device). On the CPU it passes
// batches through untouched.
#include <memory>

#include "engine/train/batch.h"
#include "engine/train/metric.h"

namespace oar {

class OrderedWorker;

class DeviceBatches : public BatchSource {
 public:
  // `source` is not owned and must outlive this object.
  DeviceBatches(BatchSource& source, Device device);
  ~DeviceBatches() override;

  int64_t num_samples() const override { return source_.num_samples(); }
  int64_t num_batches() const override { return source_.num_batches(); }
  void start_epoch(int64_t epoch, int64_t skip_batches = 0) override;
  // The next batch with its tensors on the device (meta and size as the source gave them).
  bool next(Batch& out) override;
  // The host batch that the last next() handed out on the device (metrics and predictions read
  // labels and metadata there without copying them back).
  const Batch& host() const;
  Device device() const { return device_; }

 private:
  struct Pending;
  bool fetch(Pending& p);
  void stage(Pending& p);  // on the copy thread: pin, queue the copies, record the event
  void wait_staged(Pending& p);
  BatchSource& source_;
  Device device_;
  std::unique_ptr<OrderedWorker> copier_;  // CUDA only
  std::unique_ptr<Pending> ahead_;         // the batch whose copy is in flight
  std::unique_ptr<Pending> current_;
  bool ahead_valid_ = false;
};

// The device of a module's first parameter (or buffer); the CPU for a module with neither.
namespace nn {
class Module;
}
Device module_device(const nn::Module& m);

// CPU copies of tensors (the tensors themselves when they are on the CPU already).
Outputs to_host(const Outputs& outputs);

}  // namespace oar
