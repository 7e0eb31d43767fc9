#include "video/models/tsm.h"

#include "engine/core/error.h"
#include "engine/ops.h"

namespace oar::video {

namespace {
TsnOptions as_tsn(const TsmOptions& o) {
  TsnOptions t;
  t.backbone = o.backbone;
  t.backbone.shift_segments = 1;  // any > 0 turns the shift on; forward sets the real count
  t.num_classes = o.num_classes;
  t.dropout = o.dropout;
  return t;
}
}  // namespace

Tsm::Tsm(const TsmOptions& o, Generator* gen) : Tsn(as_tsn(o), gen) {
  OAR_CHECK(o.backbone.shift_fold_div >= 2, "tsm: fold_div must be >= 2, got ",
            o.backbone.shift_fold_div);
  segments_ = 1;
}

void Tsm::set_segments(int64_t t) {
  if (t == segments_) return;
  for (int64_t s = 0; s < 4; ++s)
    for (int64_t b = 0; b < num_blocks(s); ++b) block(s, b).set_shift_segments(t);
  segments_ = t;
}

Tensor Tsm::forward(const Tensor& x) {
  OAR_CHECK(x.dim() == 5, name(), ": input must be clips [N, T, C, H, W], got ",
            shape_str(x.shape()));
  set_segments(x.size(1));
  return Tsn::forward(x);
}

}  // namespace oar::video
