#pragma once
// Device dispatch: an op's public function checks shapes and dtypes, then calls
// OAR_DISPATCH(device, kernel, args...), which runs cpu::kernel or cuda::kernel by the inputs'
// device. Op callers never change when a device is added; only the op's files do.
#include "engine/core/device.h"
#include "engine/core/error.h"

namespace oar::detail {
inline void require_cpu(Device d, const char* op) {
  if (!d.is_cpu())
    OAR_FAIL(op, ": device ", d.str(), " is not available (this build of oar has no CUDA kernels)");
}
}  // namespace oar::detail

#ifdef OAR_WITH_CUDA
#define OAR_DISPATCH(dev, fn, ...) \
  ((dev).is_cuda() ? ::oar::cuda::fn(__VA_ARGS__) : ::oar::cpu::fn(__VA_ARGS__))
#else
#define OAR_DISPATCH(dev, fn, ...) \
  (::oar::detail::require_cpu((dev), #fn), ::oar::cpu::fn(__VA_ARGS__))
#endif

// Inputs of one op must share a device.
#define OAR_CHECK_SAME_DEVICE(op, a, b)                                                   \
  OAR_CHECK((a).device() == (b).device(), op, ": inputs on different devices (",         \
            (a).device().str(), " and ", (b).device().str(), ")")
