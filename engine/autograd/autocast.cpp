#include "engine/autograd/autocast.h"

#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "engine/autograd/grad_mode.h"
#include "engine/autograd/node.h"
#include "engine/core/error.h"
#include "engine/tensor/source_stamp.h"

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
// Lowered copies of parameters. The key holds the storage's address, so an entry is only trusted
// while its weak pointer still names that storage (a freed and reused address misses).
struct CacheKey {
  const Storage* storage;
  int64_t offset;
  Shape shape, strides;
  DType dtype;
  bool operator<(const CacheKey& o) const {
    return std::tie(storage, offset, shape, strides, dtype) <
           std::tie(o.storage, o.offset, o.shape, o.strides, o.dtype);
  }
};
struct CacheEntry {
  SourceStamp stamp;  // of the f32 tensor, taken before the cast
  Tensor lowered;     // detached
};
// Never destroyed: the cached tensors must not be freed at exit after the allocators they came
// from (static destruction order across files is unspecified).
std::mutex& g_cache_mu = *new std::mutex;
std::map<CacheKey, CacheEntry>& g_cache = *new std::map<CacheKey, CacheEntry>;
std::atomic<int64_t> g_cache_hits{0};

bool cacheable(const Tensor& t) {
  return t.is_leaf() && t.impl()->requires_grad && t.dtype() == DType::f32;
}

Tensor cached_lowered(const Tensor& t, DType dtype) {
  const std::shared_ptr<Storage>& st = t.impl()->storage;
  const CacheKey key{st.get(), t.offset(), t.shape(), t.strides(), dtype};
  std::lock_guard<std::mutex> lock(g_cache_mu);
  auto it = g_cache.find(key);
  if (it != g_cache.end() && it->second.stamp.current({t})) {
    ++g_cache_hits;
    return it->second.lowered;
  }
  // Entries whose storage died are dropped whenever a new cast is stored.
  for (auto e = g_cache.begin(); e != g_cache.end();)
    e = e->second.stamp.alive() ? std::next(e) : g_cache.erase(e);
  SourceStamp stamp({t});
  Tensor lowered;
  {
    NoGradGuard ng;
    lowered = t.detach().to(dtype);
  }
  g_cache[key] = CacheEntry{std::move(stamp), lowered};
  return lowered;
}

}  // namespace

Tensor autocast_cast(const Tensor& t, DType dtype) {
  if (t.dtype() == dtype) return t;
  if (!cacheable(t)) return t.to(dtype);
  // A new handle on the cached data, so the cast node recorded below is this use's alone.
  Tensor out = cached_lowered(t, dtype).detach();
  if (autograd::needs_grad({t})) {
    autograd::record("to_dtype", {&out}, {t}, [](const autograd::Grads& g) {
      return autograd::TensorList{g[0].to(DType::f32)};
    });
  }
  return out;
}

void autocast_clear_cache() {
  std::lock_guard<std::mutex> lock(g_cache_mu);
  g_cache.clear();
}

int64_t autocast_cache_size() {
  std::lock_guard<std::mutex> lock(g_cache_mu);
  return static_cast<int64_t>(g_cache.size());
}

int64_t autocast_cache_hits() {
  return g_cache_hits.load();
}

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
    if (p == AutocastPolicy::lower && t->dtype() == DType::f32) *t = autocast_cast(*t, g_dtype);
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
