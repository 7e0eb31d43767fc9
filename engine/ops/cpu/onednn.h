#pragma once
// The thin layer between oar's CPU kernels and oneDNN 3.x: one engine and stream, memory
// descriptors for tensors, and a cache of primitives keyed by (op, shapes, dtypes, attributes),
// so no primitive is created twice. Include only from engine/ops/cpu/*.cpp.
#include <dnnl.hpp>

#include <functional>
#include <memory>
#include <string>

#include "engine/tensor/tensor.h"

namespace oar::cpu::onednn {

dnnl::engine& engine();
dnnl::stream& stream();

dnnl::memory::data_type data_type(DType t);
dnnl::memory::dims dims(const Shape& s);
// A plain (strided) descriptor that matches the tensor's shape and strides exactly.
dnnl::memory::desc desc_of(const Tensor& t);
// A plain descriptor for a tensor of shape/dtype viewed as row-major contiguous.
dnnl::memory::desc plain_desc(const Shape& s, DType t);
// Wraps the tensor's memory (no copy).
dnnl::memory memory_of(const Tensor& t, const dnnl::memory::desc& d);
inline dnnl::memory memory_of(const Tensor& t) { return memory_of(t, desc_of(t)); }

// A cache of arbitrary objects (primitive descriptors, primitives, reordered weights) keyed by
// strings built from what determines them. Thread-safe; never evicts (shapes in a run are few).
std::shared_ptr<void> cache_get(const std::string& key);
void cache_put(const std::string& key, std::shared_ptr<void> value);

template <typename T>
std::shared_ptr<T> cached(const std::string& key, const std::function<std::shared_ptr<T>()>& make) {
  if (auto v = cache_get(key)) return std::static_pointer_cast<T>(v);
  auto v = make();
  cache_put(key, v);
  return v;
}

// Key fragment for a tensor: dtype, shape and strides.
std::string key_of(const Tensor& t);

// Copies memory `from` into the layout `to_desc`, returning new memory (used for weights and
// activations whose layout a primitive chose).
dnnl::memory reorder(const dnnl::memory& from, const dnnl::memory::desc& to_desc);

// Allocates a tensor-backed scratch/workspace buffer for a descriptor (counted in peak memory).
Tensor buffer_for(const dnnl::memory::desc& d);

}  // namespace oar::cpu::onednn
