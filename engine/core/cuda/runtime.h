#pragma once
// The CUDA runtime as oar uses it: devices, each device's stream, events and pinned host memory.
// Declared only in builds with OAR_WITH_CUDA; this header pulls in no CUDA headers.
//
// Ordering: every kernel and copy on a device runs on that device's current stream
// (context_for(Device::cuda(i)).stream, by default one non-blocking stream per device shared by
// all threads). The caching allocator reuses freed blocks in that stream order, so a tensor may
// be freed while kernels that read it are still queued. Work on another stream must synchronise
// (Event) before its tensors are freed.
#ifdef OAR_WITH_CUDA
#include <cstddef>

#include "engine/core/allocator.h"
#include "engine/core/device.h"
#include "engine/tensor/tensor.h"

namespace oar::cuda {

// GPUs visible to this process; 0 when there is no driver or no device.
int device_count();
// The default stream of device `index` (a cudaStream_t), created on first use.
void* default_stream(int index);
// Blocks the host until all work queued on the device's current stream has finished.
void synchronize(Device d);

// Whether f32 matrix products and convolutions may use TF32 tensor cores (about 1e-3 relative
// error, several times faster). Off unless set here or by OAR_ALLOW_TF32=1 in the environment.
bool allow_tf32();
void set_allow_tf32(bool allow);

// A CUDA event on one device. record() marks the current point of the device's current stream.
class Event {
 public:
  explicit Event(bool timing = false);
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  void record(Device d);
  // Marks the current point of `stream` (a cudaStream_t of device `index`, e.g. copy_stream).
  void record_on(void* stream, int index);
  // Makes the current stream of `d` wait for this event (no host blocking).
  void block(Device d) const;
  // Makes `stream` (a cudaStream_t) wait for this event (no host blocking).
  void block_stream(void* stream) const;
  void synchronize() const;
  bool done() const;
  // Milliseconds from this event to `end` (both recorded, created with timing = true).
  float elapsed_ms(const Event& end) const;

 private:
  void* event_ = nullptr;
  bool timing_ = false;
  int device_ = -1;
};

// Page-locked host memory: copies from it to a GPU are truly asynchronous, so do not write or
// free it until the copy's stream has been synchronised. Wrap it in a tensor with
// from_blob(p, shape, dtype, free_pinned).
void* alloc_pinned(size_t nbytes);
void free_pinned(void* p);
// A caching allocator of pinned host blocks (engine/core/cuda/allocator.cpp): the loaders'
// staging buffers come back every step, and cudaHostAlloc is far too slow to call per batch.
// Its stats count pinned bytes.
Allocator& pinned_allocator();
// A CPU tensor in pinned memory from pinned_allocator (uninitialised, contiguous).
Tensor pinned_empty(const Shape& shape, DType dtype);
// Whether `p` points into page-locked host memory that this process registered with CUDA.
bool is_pinned(const void* p);

// A second non-blocking stream per device for host-to-device batch copies, so the next batch
// travels while the current step computes on the default stream (created on first use).
void* copy_stream(int index);
// Queues a plain byte copy from host `src` to device memory `dst` on `stream` (a cudaStream_t of
// device `index`). Asynchronous when `src` is pinned: keep it alive until the stream passes it.
void memcpy_to_device_async(void* dst, const void* src, size_t nbytes, int index, void* stream);

}  // namespace oar::cuda
#endif
