#pragma once
// Losses. Reductions: "mean" (default), "sum", "none".
#include <string>

#include "engine/tensor/tensor.h"

namespace oar {

// logits [N, C] or [N, C, d1, ...]; target i64 class indices [N] or [N, d1, ...].
// Positions whose target == ignore_index are skipped (and excluded from the mean).
// label_smoothing eps mixes the one-hot target with the uniform distribution (as PyTorch).
// Optional per-class `weight` [C].
Tensor cross_entropy(const Tensor& logits, const Tensor& target, int64_t ignore_index = -100,
                     double label_smoothing = 0.0, const std::string& reduction = "mean",
                     const Tensor& weight = Tensor());
// Soft labels: target is a probability distribution of logits' shape along dim 1.
Tensor cross_entropy_soft(const Tensor& logits, const Tensor& target_probs,
                          const std::string& reduction = "mean");
// log_probs [N, C] (or [N, C, d...]) and i64 targets.
Tensor nll_loss(const Tensor& log_probs, const Tensor& target, int64_t ignore_index = -100,
                const std::string& reduction = "mean", const Tensor& weight = Tensor());
// Numerically stable sigmoid + BCE; optional pos_weight broadcast along the last dim.
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& target,
                                        const std::string& reduction = "mean",
                                        const Tensor& pos_weight = Tensor());
Tensor mse_loss(const Tensor& input, const Tensor& target, const std::string& reduction = "mean");
// Huber-style smooth L1 with threshold beta (as PyTorch).
Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, double beta = 1.0,
                      const std::string& reduction = "mean");

}  // namespace oar
