#pragma once
// TSM's temporal shift (Lin et al. 2019; PaddlePaddle's temporal_shift op): of C channels,
// the first C/fold_div take the next segment's values, the next C/fold_div the previous
// segment's, the rest stay; the ends are zero padded. One pass over the tensor forward and one
// backward (the backward is the opposite shift), no intermediate tensors; differentiable.
#include <cstdint>

#include "engine/tensor/tensor.h"

namespace oar::video {

// x [N*seg_num, C, H, W] (segments of one clip consecutive) -> same shape:
//   out[n,t,c]          = x[n,t+1,c] (0 at t = T-1)  for c <  fold
//   out[n,t,c]          = x[n,t-1,c] (0 at t = 0)    for fold <= c < 2 fold
//   out[n,t,c]          = x[n,t,c]                   otherwise,  fold = C / fold_div.
Tensor temporal_shift(const Tensor& x, int64_t seg_num, int64_t fold_div = 8);

}  // namespace oar::video
