#include "video/models/temporal_shift.h"

#include "engine/core/error.h"
#include "engine/ops.h"

namespace oar::video {

Tensor temporal_shift(const Tensor& x, int64_t seg_num, int64_t fold_div) {
  OAR_CHECK(x.dim() == 4, "temporal_shift: input must be [N*seg_num, C, H, W], got ",
            shape_str(x.shape()));
  OAR_CHECK(seg_num > 0 && x.size(0) % seg_num == 0, "temporal_shift: batch ", x.size(0),
            " is not a multiple of seg_num ", seg_num);
  OAR_CHECK(fold_div >= 2, "temporal_shift: fold_div must be >= 2, got ", fold_div);
  const int64_t n = x.size(0) / seg_num, c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t fold = c / fold_div;
  if (fold == 0) return x;
  const Tensor v = x.reshape({n, seg_num, c, h, w});
  if (seg_num == 1) {
    // Both shifted groups come from outside the clip: zeros.
    const Tensor z = zeros_like(v.narrow(2, 0, 2 * fold));
    return concat({z, v.narrow(2, 2 * fold, c - 2 * fold)}, 2).reshape({n, c, h, w});
  }
  // pads run from the first dim: {before_0, after_0, before_1, after_1, ...}.
  const Tensor from_next =
      pad(v.narrow(2, 0, fold).narrow(1, 1, seg_num - 1), {0, 0, 0, 1, 0, 0, 0, 0, 0, 0});
  const Tensor from_prev =
      pad(v.narrow(2, fold, fold).narrow(1, 0, seg_num - 1), {0, 0, 1, 0, 0, 0, 0, 0, 0, 0});
  const Tensor rest = v.narrow(2, 2 * fold, c - 2 * fold);
  return concat({from_next, from_prev, rest}, 2).reshape({n * seg_num, c, h, w});
}

}  // namespace oar::video
