#include "engine/ops/one_hot.h"

#include "engine/core/error.h"
#include "engine/ops/dispatch.h"

namespace oar {

namespace cpu {
// out (contiguous [..., num_classes], zero-filled here) gets 1 at each index; throws on an index
// outside [0, num_classes).
void one_hot(const Tensor& out, const Tensor& indices, int64_t num_classes);
}  // namespace cpu
#ifdef OAR_WITH_CUDA
namespace cuda {
void one_hot(const Tensor& out, const Tensor& indices, int64_t num_classes);
}  // namespace cuda
#endif

Tensor one_hot(const Tensor& indices, int64_t num_classes, DType dtype) {
  OAR_CHECK(indices.defined(), "one_hot: undefined indices");
  OAR_CHECK(indices.dtype() == DType::i64 || indices.dtype() == DType::i32,
            "one_hot: indices must be i64 or i32, got ", dtype_name(indices.dtype()));
  OAR_CHECK(num_classes > 0, "one_hot: num_classes must be positive, got ", num_classes);
  Shape shape = indices.shape();
  shape.push_back(num_classes);
  Tensor out = empty(shape, dtype, indices.device());
  OAR_DISPATCH_GPU(indices.device(), one_hot, out, indices.to(DType::i64).contiguous(),
                   num_classes);
  return out;
}

}  // namespace oar
