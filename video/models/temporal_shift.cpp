#include "video/models/temporal_shift.h"

#include "engine/autograd/grad_mode.h"
#include "engine/autograd/node.h"
#include "engine/core/error.h"

namespace oar::video {

namespace {

// The shift as one pass: each element of the output is written once, from x or as a zero; no
// intermediate tensors. v is x viewed as [N, T, C*H*W] (contiguous), so every (clip, segment)
// group is one run of fold*H*W elements and the copies go row by row. `forward` true: the first
// group takes the next segment's values and the second the previous segment's (the TSM shift);
// false: the other way round, which is the shift's adjoint (its backward).
Tensor shift_pass(const Tensor& x, int64_t seg_num, int64_t fold, bool forward) {
  NoGradGuard no_grad;
  const int64_t n = x.size(0) / seg_num, c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t hw = h * w, len = c * hw, g = fold * hw;
  const Tensor v = x.contiguous().view({n, seg_num, len});
  Tensor out = empty({n, seg_num, len}, x.dtype(), x.device());
  // Group [start, start + g): out[:, t] = v[:, t + step] where that segment exists, else 0.
  auto shift_group = [&](int64_t start, int64_t step) {
    Tensor o = out.narrow(2, start, g);
    const Tensor src = v.narrow(2, start, g);
    if (seg_num > 1) {
      if (step > 0) {
        o.narrow(1, 0, seg_num - 1).copy_(src.narrow(1, 1, seg_num - 1));
      } else {
        o.narrow(1, 1, seg_num - 1).copy_(src.narrow(1, 0, seg_num - 1));
      }
    }
    o.narrow(1, step > 0 ? seg_num - 1 : 0, 1).zero_();
  };
  shift_group(0, forward ? 1 : -1);
  shift_group(g, forward ? -1 : 1);
  if (len > 2 * g) out.narrow(2, 2 * g, len - 2 * g).copy_(v.narrow(2, 2 * g, len - 2 * g));
  return out.view({n * seg_num, c, h, w});
}

Tensor shift(const Tensor& x, int64_t seg_num, int64_t fold, bool forward) {
  Tensor out = shift_pass(x, seg_num, fold, forward);
  if (autograd::needs_grad({x})) {
    // The shift moves values and writes zeros; its adjoint is the opposite shift.
    autograd::record("temporal_shift", {&out}, {x},
                     [seg_num, fold, forward](const autograd::Grads& gr) {
                       return autograd::TensorList{shift(gr[0], seg_num, fold, !forward)};
                     });
  }
  return out;
}

}  // namespace

Tensor temporal_shift(const Tensor& x, int64_t seg_num, int64_t fold_div) {
  OAR_CHECK(x.dim() == 4, "temporal_shift: input must be [N*seg_num, C, H, W], got ",
            shape_str(x.shape()));
  OAR_CHECK(seg_num > 0 && x.size(0) % seg_num == 0, "temporal_shift: batch ", x.size(0),
            " is not a multiple of seg_num ", seg_num);
  OAR_CHECK(fold_div >= 2, "temporal_shift: fold_div must be >= 2, got ", fold_div);
  const int64_t fold = x.size(1) / fold_div;
  if (fold == 0 || x.numel() == 0) return x;
  return shift(x, seg_num, fold, /*forward=*/true);
}

}  // namespace oar::video
