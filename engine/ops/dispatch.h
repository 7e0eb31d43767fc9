#pragma once
// Device dispatch: an op's public function checks shapes and dtypes, then calls a kernel by the
// inputs' device. Ops opt in to the GPU one at a time:
//   OAR_DISPATCH(dev, fn, args...)      cpu::fn only; other devices get "op fn has no CUDA kernel
//   yet". OAR_DISPATCH_GPU(dev, fn, args...)  cpu::fn or cuda::fn (declare cuda::fn in the op's
//   .cpp next
//                                       to cpu::fn, inside #ifdef OAR_WITH_CUDA).
// Op callers never change when a device is added; only the op's files do.
#include "engine/core/device.h"
#include "engine/core/error.h"

namespace oar::detail {
inline void require_cpu(Device d, const char* op) {
  if (d.is_cpu()) return;
#ifdef OAR_WITH_CUDA
  OAR_FAIL("op ", op, " has no CUDA kernel yet (input on ", d.str(),
           "); move the inputs to the CPU with .to(Device::cpu())");
#else
  OAR_FAIL(op, ": device ", d.str(), " is not available (this build of oar has no CUDA backend)");
#endif
}
}  // namespace oar::detail

#define OAR_DISPATCH(dev, fn, ...) \
  (::oar::detail::require_cpu((dev), #fn), ::oar::cpu::fn(__VA_ARGS__))

#ifdef OAR_WITH_CUDA
#define OAR_DISPATCH_GPU(dev, fn, ...) \
  ((dev).is_cuda() ? ::oar::cuda::fn(__VA_ARGS__) : ::oar::cpu::fn(__VA_ARGS__))
#else
#define OAR_DISPATCH_GPU(dev, fn, ...) OAR_DISPATCH(dev, fn, __VA_ARGS__)
#endif

// Inputs of one op must share a device.
#define OAR_CHECK_SAME_DEVICE(op, a, b)                                          \
  OAR_CHECK((a).device() == (b).device(), op, ": inputs on different devices (", \
            (a).device().str(), " and ", (b).device().str(), ")")
