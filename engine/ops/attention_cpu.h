#pragma once
// The CPU attention kernel's view of its operands (internal to engine/ops/attention.cpp and
// engine/ops/cpu/attention.cpp). Each operand is a batch of B row-major matrices inside one
// tensor, at any batch strides and row stride, so the head split of a [N, L, heads * D] projection
// ([N, heads, L, D] with heads inside L) is read in place and the output is written in place for
// the merge back to [N, L, heads * D].
#include <cstdint>
#include <vector>

namespace oar::cpu {

struct MatrixBatch {
  float* data = nullptr;        // null: not wanted (a gradient nobody needs)
  std::vector<int64_t> offset;  // element offset of matrix b
  int64_t ld = 0;               // elements between rows; columns are adjacent
  float* at(int64_t b) const { return data + offset[static_cast<size_t>(b)]; }
};

// An additive f32 mask or a bool keep-mask, broadcast in place: element (b, i, j) at
// offset[b] + i * row_stride + j * col_stride (strides may be 0).
struct MaskBatch {
  const float* additive = nullptr;
  const bool* keep = nullptr;
  std::vector<int64_t> offset;
  int64_t row_stride = 0, col_stride = 0;
  bool defined() const { return additive || keep; }
};

// out = dropout(softmax(q k^T * scale + mask)) v per matrix; probs [B, Lq, Lk] contiguous gets the
// softmax before dropout. Dropout keeps weight (b, i, j) when uniform(seed, base + (b*Lq+i)*Lk + j)
// >= p; with p > 0 the keep bits go to `keep` (attention_keep_bytes(Lq, Lk) bytes per matrix, bit
// i*Lk + j of matrix b), which backward reads instead of drawing again.
int64_t attention_keep_bytes(int64_t Lq, int64_t Lk);
void attention_forward(const MatrixBatch& q, const MatrixBatch& k, const MatrixBatch& v,
                       const MaskBatch& mask, int64_t B, int64_t Lq, int64_t Lk, int64_t D,
                       int64_t Dv, double scale, double p, uint64_t seed, uint64_t base,
                       const MatrixBatch& out, float* probs, uint8_t* keep);
// Writes the gradients whose data is set, and dscores [B, Lq, Lk] (the gradient of the masked
// scores, i.e. of an additive mask) when not null. keep: forward's bits (when p > 0).
void attention_backward(const MatrixBatch& q, const MatrixBatch& k, const MatrixBatch& v,
                        const float* probs, const uint8_t* keep, const MatrixBatch& dout, int64_t B,
                        int64_t Lq, int64_t Lk, int64_t D, int64_t Dv, double scale, double p,
                        const MatrixBatch& dq, const MatrixBatch& dk, const MatrixBatch& dv,
                        float* dscores);

}  // namespace oar::cpu
