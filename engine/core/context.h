#pragma once
// The execution context every kernel receives: device, stream, thread count. Kernels never
// reach for globals, so CUDA streams, per-rank devices and tests can coexist.
#include "engine/core/device.h"

namespace oar {

struct ExecContext {
  Device device;
  int num_threads = 1;     // CPU: threads in the shared OpenMP pool (oneDNN uses the same pool)
  void* stream = nullptr;  // CUDA: cudaStream_t; CPU: unused
};

// The current context for a device on this thread.
ExecContext& context_for(Device d);

// Sets the size of the shared OpenMP pool used by oneDNN and our loops.
void set_num_threads(int n);
int num_threads();

}  // namespace oar
