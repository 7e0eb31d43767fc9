#pragma once
// Whether a ForwardHookGuard (engine/nn/module.h) is alive on this thread: models then keep every
// module call, e.g. no inference-time fusion that would skip a BatchNorm's own forward.

namespace oar::nn {

bool forward_hook_active();

}  // namespace oar::nn
