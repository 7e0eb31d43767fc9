#pragma once
// Tensor: a cheap handle to shared storage plus shape, strides (in elements), offset, dtype and
// device. Views (reshape, permute, slice, expand, ...) share storage and record autograd nodes.
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "engine/core/device.h"
#include "engine/core/dtype.h"
#include "engine/core/generator.h"

namespace oar {

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);
int64_t shape_numel(const Shape& s);
Shape contiguous_strides(const Shape& s);

// Owned or borrowed memory on one device.
struct Storage {
  void* data = nullptr;
  size_t nbytes = 0;
  Device device;
  std::function<void(void*)> deleter;  // empty: memory came from allocator_for(device)
  // Bumped by in-place writers (optimizer steps, copy_) so kernels can invalidate cached
  // reorders of this memory (oneDNN weights).
  uint64_t version = 0;

  Storage(size_t nbytes, Device d);  // allocates from the device's caching allocator
  Storage(void* data, size_t nbytes, Device d, std::function<void(void*)> deleter);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

namespace autograd {
struct Node;
}

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;
  int64_t offset = 0;  // in elements
  DType dtype = DType::f32;

  // autograd
  bool requires_grad = false;  // set on leaves; non-leaves require grad through grad_fn
  std::shared_ptr<TensorImpl> grad;
  std::shared_ptr<autograd::Node> grad_fn;
  int output_nr = 0;
  // Called with the accumulated gradient each time backward adds into a leaf's .grad.
  std::vector<std::function<void(TensorImpl&)>> grad_hooks;
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return impl_ != nullptr; }
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

  const Shape& shape() const { return impl_->shape; }
  const Shape& strides() const { return impl_->strides; }
  int64_t dim() const { return static_cast<int64_t>(impl_->shape.size()); }
  // size(-1) is the last dimension.
  int64_t size(int64_t d) const;
  int64_t stride(int64_t d) const;
  int64_t numel() const { return shape_numel(impl_->shape); }
  int64_t offset() const { return impl_->offset; }
  DType dtype() const { return impl_->dtype; }
  Device device() const { return impl_->storage->device; }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype()); }
  bool is_contiguous() const;
  bool same_storage(const Tensor& o) const { return impl_->storage == o.impl_->storage; }

  // Pointer to element 0 (honouring offset). Checks T against the dtype.
  template <typename T>
  T* data() const {
    check_type(dtype_of<T>::value);
    return static_cast<T*>(raw_data());
  }
  void* raw_data() const;
  // The value of a one-element tensor, converted to T.
  template <typename T>
  T item() const {
    return static_cast<T>(item_double());
  }
  double item_double() const;
  // Copies the elements (any layout) to a vector of T, converting.
  template <typename T>
  std::vector<T> to_vector() const;

  // ---- views (share storage, no copy) ----
  Tensor reshape(const Shape& shape) const;  // copies only when a view is impossible
  Tensor view(const Shape& shape) const;     // never copies; throws when impossible
  Tensor flatten(int64_t start = 0, int64_t end = -1) const;
  Tensor permute(const Shape& dims) const;
  Tensor transpose(int64_t a, int64_t b) const;
  Tensor t() const { return transpose(0, 1); }
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor select(int64_t dim, int64_t index) const;  // removes dim
  Tensor expand(const Shape& shape) const;          // -1 keeps a size
  Tensor squeeze(int64_t dim) const;
  Tensor squeeze() const;
  Tensor unsqueeze(int64_t dim) const;

  // ---- copies ----
  Tensor contiguous() const;
  Tensor clone() const;
  Tensor to(DType t) const;
  Tensor to(Device d) const;
  // Copies src (broadcast to this shape, any dtype) into this tensor's memory. No autograd.
  Tensor& copy_(const Tensor& src);
  Tensor& fill_(double value);
  Tensor& zero_() { return fill_(0.0); }

  // ---- autograd ----
  bool requires_grad() const;
  Tensor& set_requires_grad(bool r = true);
  bool is_leaf() const { return impl_->grad_fn == nullptr; }
  Tensor grad() const { return Tensor(impl_->grad); }
  void set_grad(const Tensor& g) { impl_->grad = g.impl_; }
  // A tensor sharing storage with no autograd history.
  Tensor detach() const;
  // Backpropagates from this tensor (a scalar, or with `grad` of the same shape).
  void backward(const Tensor& grad = Tensor()) const;

  std::string str(int64_t max_per_dim = 6) const;

  // arithmetic (engine/ops/binary.h)
  Tensor operator-() const;

 private:
  void check_type(DType t) const;
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// Nobody else sees t's memory: at most `handles` references to t's impl (the caller's own among
// them), no other tensor on its storage, plain layout. A kernel may then write over it in place
// (the autograd engine's gradient sums, linear_act's backward).
bool sole_owner(const Tensor& t, long handles = 1);

// ---- creation ----
Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
Tensor ones(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
Tensor full(const Shape& shape, double value, DType dtype = DType::f32,
            Device device = Device::cpu());
Tensor empty_like(const Tensor& t);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);
Tensor scalar_tensor(double value, DType dtype = DType::f32, Device device = Device::cpu());
// [start, end) by step.
Tensor arange(double start, double end, double step = 1.0, DType dtype = DType::i64);
Tensor arange(int64_t end, DType dtype = DType::i64);
// Uniform in [low, high) and standard normal, from `gen` (the default generator when null).
// Draw i depends only on (seed, offset + i): every device gives the same numbers.
Tensor rand(const Shape& shape, Generator* gen = nullptr, double low = 0.0, double high = 1.0,
            DType dtype = DType::f32, Device device = Device::cpu());
Tensor randn(const Shape& shape, Generator* gen = nullptr, double mean = 0.0, double std = 1.0,
             DType dtype = DType::f32, Device device = Device::cpu());
// Integers uniform in [low, high).
Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator* gen = nullptr,
               DType dtype = DType::i64, Device device = Device::cpu());
// Wraps external memory without copying; `deleter` (may be empty) runs when the last view dies.
Tensor from_blob(void* data, const Shape& shape, DType dtype,
                 std::function<void(void*)> deleter = {}, Device device = Device::cpu());
// Copies values into a new contiguous CPU tensor.
template <typename T>
Tensor tensor(const std::vector<T>& values, const Shape& shape);
template <typename T>
Tensor tensor(std::initializer_list<T> values) {
  return tensor(std::vector<T>(values), Shape{static_cast<int64_t>(values.size())});
}

// Normalises a possibly negative dimension index against rank; throws naming `op` if out of range.
int64_t wrap_dim(int64_t d, int64_t rank, const char* op);
// Broadcast shape of a and b (numpy rules); throws naming `op` on mismatch.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

}  // namespace oar
