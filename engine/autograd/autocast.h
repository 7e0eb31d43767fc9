#pragma once
// Mixed precision as a per-op policy applied at dispatch, never inside models: while an
// AutocastGuard is active, ops listed as "lower" (matmul, linear, conv, recurrent layers,
// attention) cast f32 inputs to the autocast dtype, and ops listed as "fp32" (softmax, losses,
// normalisation, reductions, exp/log) cast lower-precision inputs up to f32. Casts are
// differentiable, so gradients reach the f32 master weights in f32.
//
// The lowered copy of a parameter (an f32 leaf that requires grad) is cached, keyed by its
// storage, view and the storage's version counter: a weight used several times, or by many
// forward passes between optimizer steps (inference), is cast once. An optimizer step or any other
// in-place write bumps the version and the next use casts again. Each use still records its own
// cast node, so gradients reach the f32 weight exactly as with a fresh cast.
#include <initializer_list>

#include "engine/core/dtype.h"
#include "engine/tensor/tensor.h"

namespace oar {

enum class AutocastPolicy { keep, lower, fp32 };

bool autocast_enabled();
DType autocast_dtype();
// The policy of an op by its public name ("matmul", "softmax", ...).
AutocastPolicy autocast_policy(const char* op);
// Rewrites the defined inputs in place according to the op's policy (no-op when disabled).
void autocast_inputs(const char* op, std::initializer_list<Tensor*> inputs);
// t cast to `dtype` for autocast: from the cache when t is a parameter (see above).
Tensor autocast_cast(const Tensor& t, DType dtype);
// Drops every cached lowered copy (their memory returns to the allocator).
void autocast_clear_cache();
// Lowered copies held now, and the casts the cache has saved since the process started (tests).
int64_t autocast_cache_size();
int64_t autocast_cache_hits();

class AutocastGuard {
 public:
  explicit AutocastGuard(bool enabled = true, DType dtype = DType::bf16);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool prev_enabled_;
  DType prev_dtype_;
};

}  // namespace oar
