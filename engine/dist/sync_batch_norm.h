#pragma once
// Synchronised batch norm for data parallel training: while enabled, every BatchNorm layer in
// training mode normalises with statistics over all ranks' batches (two cross-rank sums per layer
// forward and two in backward). The models themselves do not change.
#include "engine/dist/process_group.h"

namespace oar::dist {

// Sum over ranks, differentiable: backward sums the incoming gradients over ranks.
Tensor cross_rank_sum(ProcessGroup& group, const Tensor& x);

// group must outlive the time it is enabled.
void enable_sync_batch_norm(ProcessGroup& group);
void disable_sync_batch_norm();

}  // namespace oar::dist
