#include "engine/autograd/autocast.h"

#include <cstring>

#include "engine/core/error.h"

namespace oar {

namespace {
thread_local bool g_enabled = false;
thread_local DType g_dtype = DType::bf16;

struct Entry {
  const char* op;
  AutocastPolicy policy;
};
// The policy table (as torch.autocast's CPU lists, trimmed to oar's ops).
constexpr Entry kTable[] = {
    {"matmul", AutocastPolicy::lower},
    {"bmm", AutocastPolicy::lower},
    {"linear", AutocastPolicy::lower},
    {"gemm", AutocastPolicy::lower},
    {"conv", AutocastPolicy::lower},
    {"lstm", AutocastPolicy::lower},
    {"gru", AutocastPolicy::lower},
    {"attention", AutocastPolicy::lower},
    {"softmax", AutocastPolicy::fp32},
    {"log_softmax", AutocastPolicy::fp32},
    {"cross_entropy", AutocastPolicy::fp32},
    {"nll_loss", AutocastPolicy::fp32},
    {"binary_cross_entropy_with_logits", AutocastPolicy::fp32},
    {"mse_loss", AutocastPolicy::fp32},
    {"smooth_l1_loss", AutocastPolicy::fp32},
    {"layer_norm", AutocastPolicy::fp32},
    {"batch_norm", AutocastPolicy::fp32},
    {"group_norm", AutocastPolicy::fp32},
    {"logsumexp", AutocastPolicy::fp32},
    {"norm", AutocastPolicy::fp32},
    {"var", AutocastPolicy::fp32},
    {"exp", AutocastPolicy::fp32},
    {"log", AutocastPolicy::fp32},
    {"sum", AutocastPolicy::fp32},
    {"mean", AutocastPolicy::fp32},
};
}  // namespace

bool autocast_enabled() {
  return g_enabled;
}
DType autocast_dtype() {
  return g_dtype;
}

AutocastPolicy autocast_policy(const char* op) {
  for (const Entry& e : kTable)
    if (std::strcmp(e.op, op) == 0) return e.policy;
  return AutocastPolicy::keep;
}

void autocast_inputs(const char* op, std::initializer_list<Tensor*> inputs) {
  if (!g_enabled) return;
  const AutocastPolicy p = autocast_policy(op);
  if (p == AutocastPolicy::keep) return;
  for (Tensor* t : inputs) {
    if (!t || !t->defined() || !is_floating(t->dtype())) continue;
    if (p == AutocastPolicy::lower && t->dtype() == DType::f32) *t = t->to(g_dtype);
    if (p == AutocastPolicy::fp32 && t->dtype() != DType::f32) *t = t->to(DType::f32);
  }
}

AutocastGuard::AutocastGuard(bool enabled, DType dtype)
    : prev_enabled_(g_enabled), prev_dtype_(g_dtype) {
  OAR_CHECK(!enabled || dtype == DType::bf16 || dtype == DType::f16,
            "autocast: dtype must be bf16 or f16, got ", dtype_name(dtype));
  g_enabled = enabled;
  g_dtype = dtype;
}

AutocastGuard::~AutocastGuard() {
  g_enabled = prev_enabled_;
  g_dtype = prev_dtype_;
}

}  // namespace oar
