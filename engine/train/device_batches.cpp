#include "engine/train/device_batches.h"

#include "engine/core/context.h"
#include "engine/core/error.h"
#include "engine/nn/module.h"
#include "engine/train/ordered_worker.h"
#ifdef OAR_WITH_CUDA
#include "engine/core/cuda/runtime.h"
#endif

namespace oar {

struct DeviceBatches::Pending {
  Batch host;
  Batch device;
  int64_t ticket = 0;  // the copy thread's job staging this batch (0: none in flight)
#ifdef OAR_WITH_CUDA
  std::vector<Tensor> staging;     // pinned copies the copy stream reads from
  void* compute_stream = nullptr;  // the training thread's stream (contexts are per thread)
  cuda::Event allocated;           // the compute stream's point when the device tensors were made
  cuda::Event copied;              // the copy stream's point after the last copy of this batch
#endif
};

DeviceBatches::DeviceBatches(BatchSource& source, Device device)
    : source_(source),
      device_(device),
      ahead_(std::make_unique<Pending>()),
      current_(std::make_unique<Pending>()) {
  OAR_CHECK(device.is_cpu() || cuda_available(), "device ", device.str(),
            ": no CUDA device is available to this build of oar");
  if (!device.is_cpu()) copier_ = std::make_unique<OrderedWorker>();
}

DeviceBatches::~DeviceBatches() {
  // The copy stream may still write into tensors that are about to return to the cache.
  try {
    if (ahead_valid_) wait_staged(*ahead_);
#ifdef OAR_WITH_CUDA
    if (ahead_valid_) ahead_->copied.synchronize();
#endif
  } catch (...) {
  }
  copier_.reset();  // runs what is queued (nothing: every job was waited for), then joins
}

void DeviceBatches::wait_staged(Pending& p) {
  if (p.ticket == 0) return;
  const int64_t t = p.ticket;
  p.ticket = 0;
  copier_->wait(t);
}

void DeviceBatches::start_epoch(int64_t epoch, int64_t skip_batches) {
  if (ahead_valid_) {
    ahead_valid_ = false;
    try {
      wait_staged(*ahead_);  // a failed copy of a batch that is dropped anyway does not matter
    } catch (const std::exception&) {
    }
#ifdef OAR_WITH_CUDA
    ahead_->copied.synchronize();
#endif
  }
  ahead_->host = Batch();
  ahead_->device = Batch();
  source_.start_epoch(epoch, skip_batches);
}

bool DeviceBatches::fetch(Pending& p) {
  p.host = Batch();
  p.device = Batch();
  if (!source_.next(p.host)) return false;
  if (device_.is_cpu()) {
    p.device = p.host;
    return true;
  }
  p.device.meta = p.host.meta;
  p.device.size = p.host.size;
  // The host batch stays untouched while the copy thread reads it; the training thread reads
  // only the other slot until it waits for this one.
#ifdef OAR_WITH_CUDA
  p.compute_stream = context_for(device_).stream;
#endif
  p.ticket = copier_->post([this, &p] { stage(p); });
  return true;
}

void DeviceBatches::stage(Pending& p) {
#ifdef OAR_WITH_CUDA
  // This slot's staging buffers were read by its previous copy: wait for it before reuse.
  p.copied.synchronize();
  p.staging.clear();
  void* stream = cuda::copy_stream(device_.index);
  // Device blocks come from the compute stream's cache: queued kernels may still read them, so
  // the copy stream starts after everything queued so far.
  p.allocated.record_on(p.compute_stream, device_.index);
  p.allocated.block_stream(stream);
  for (const auto& [key, t] : p.host.tensors) {
    Tensor src = t.contiguous();
    if (!cuda::is_pinned(src.raw_data())) {
      Tensor pinned = cuda::pinned_empty(src.shape(), src.dtype());
      pinned.copy_(src);
      src = pinned;
    }
    p.staging.push_back(src);
    Tensor dst = empty(src.shape(), src.dtype(), device_);
    cuda::memcpy_to_device_async(dst.raw_data(), src.raw_data(), src.nbytes(), device_.index,
                                 stream);
    p.device.tensors[key] = dst;
  }
  p.copied.record_on(stream, device_.index);
#else
  for (const auto& [key, t] : p.host.tensors) p.device.tensors[key] = t.to(device_);
#endif
}

bool DeviceBatches::next(Batch& out) {
  if (!ahead_valid_) ahead_valid_ = fetch(*ahead_);
  if (!ahead_valid_) return false;
  std::swap(ahead_, current_);
  if (!device_.is_cpu()) {
    try {
      wait_staged(*current_);  // the copy thread has queued this batch's copies
    } catch (...) {
      ahead_valid_ = false;
      throw;
    }
#ifdef OAR_WITH_CUDA
    current_->copied.block(device_);  // compute waits for the copy, on the device
#endif
  }
  out = current_->device;
  // Start the following batch's copy now, so it overlaps the step that uses `out`.
  ahead_valid_ = fetch(*ahead_);
  return true;
}

const Batch& DeviceBatches::host() const {
  return current_->host;
}

Device module_device(const nn::Module& m) {
  for (const auto& [n, p] : m.named_parameters()) return p.device();
  for (const auto& [n, b] : m.named_buffers()) return b.device();
  return Device::cpu();
}

Outputs to_host(const Outputs& outputs) {
  Outputs out;
  for (const auto& [k, t] : outputs) out[k] = t.defined() ? t.to(Device::cpu()) : t;
  return out;
}

}  // namespace oar
