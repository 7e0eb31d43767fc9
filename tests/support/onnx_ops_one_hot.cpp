// ONNX OneHot on engine/ops/one_hot.h.
#include "engine/ops/binary.h"
#include "engine/ops/one_hot.h"
#include "tests/support/onnx_ops.h"

namespace oar::onnx {

void register_one_hot_onnx_ops(OpRegistry& r) {
  using Tensors = std::vector<Tensor>;
  r.add("OneHot", [](const Node& n, const Tensors& in, int64_t) -> Tensors {
    const Tensor idx_in = required(n, in, 0).to(DType::i64);  // float indices truncate
    const int64_t depth = static_cast<int64_t>(required(n, in, 1).item_double());
    const Tensor& values = required(n, in, 2);  // [off, on]
    // Negative indices count from the end; indices outside [-depth, depth) give all-off rows.
    const Tensor idx = add(idx_in, mul(lt(idx_in, 0.0).to(DType::i64), static_cast<double>(depth)));
    const Tensor valid = logical_and(ge(idx, 0.0), lt(idx, static_cast<double>(depth)));
    const Tensor hot = mul(one_hot(mul(idx, valid.to(DType::i64)), depth, values.dtype()),
                           valid.to(values.dtype()).unsqueeze(-1));
    const Tensor off = values.select(0, 0), on = values.select(0, 1);
    Tensor out = add(off, mul(sub(on, off), hot));
    // one_hot appends the class dim; ONNX puts it at `axis`.
    const int64_t rank = out.dim();
    const int64_t axis = wrap_dim(n.get_int("axis", -1), rank, "OneHot");
    Shape perm;
    for (int64_t d = 0; d < rank - 1; ++d) {
      if (d == axis) perm.push_back(rank - 1);
      perm.push_back(d);
    }
    if (axis == rank - 1) perm.push_back(rank - 1);
    return {out.permute(perm)};
  });
}

}  // namespace oar::onnx
