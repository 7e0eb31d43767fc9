// CUDA concat (the cpu::concat contract): each input is one strided copy into its slice of out.
#include <vector>

#include "engine/tensor/tensor.h"

namespace oar::cuda {

void concat(const Tensor& out, const std::vector<Tensor>& xs, int64_t dim) {
  int64_t off = 0;
  for (const Tensor& x : xs) {
    const int64_t n = x.size(dim);
    if (n > 0 && x.numel() > 0) out.narrow(dim, off, n).copy_(x);
    off += n;
  }
}

}  // namespace oar::cuda
