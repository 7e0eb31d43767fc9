#include "engine/core/context.h"

#include <omp.h>

#include "engine/core/error.h"
#ifdef OAR_WITH_CUDA
#include "engine/core/cuda/runtime.h"
#endif

namespace oar {

ExecContext& context_for(Device d) {
  thread_local ExecContext cpu{Device::cpu(), 0, nullptr};
  if (d.is_cpu()) {
    cpu.num_threads = omp_get_max_threads();
    return cpu;
  }
  thread_local ExecContext cuda[16];
  OAR_CHECK(d.index >= 0 && d.index < 16, "device index out of range: ", d.str());
  ExecContext& c = cuda[d.index];
  c.device = d;
#ifdef OAR_WITH_CUDA
  if (c.stream == nullptr) c.stream = cuda::default_stream(d.index);
#endif
  return c;
}

void set_num_threads(int n) {
  OAR_CHECK(n >= 1, "thread count must be at least 1, got ", n);
  omp_set_num_threads(n);
}

int num_threads() {
  return omp_get_max_threads();
}

}  // namespace oar
