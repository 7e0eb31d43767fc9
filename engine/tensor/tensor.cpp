#include "engine/tensor/tensor.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <numeric>
#include <ostream>
#include <sstream>

#include "engine/autograd/grad_mode.h"
#include "engine/autograd/node.h"
#include "engine/core/allocator.h"
#include "engine/core/error.h"
#include "engine/ops/dispatch.h"
#include "engine/ops/reduce.h"

namespace oar {

namespace cpu {
void copy(const Tensor& dst, const Tensor& src);
void fill(const Tensor& dst, double value);
void fill_uniform(const Tensor& dst, uint64_t seed, uint64_t base, double low, double high);
void fill_normal(const Tensor& dst, uint64_t seed, uint64_t base, double mean, double std);
void fill_randint(const Tensor& dst, uint64_t seed, uint64_t base, int64_t low, int64_t high);
}  // namespace cpu
#ifdef OAR_WITH_CUDA
namespace cuda {
// Either side may be on the GPU: copies between devices stage through contiguous buffers.
void copy(const Tensor& dst, const Tensor& src);
void fill(const Tensor& dst, double value);
void fill_uniform(const Tensor& dst, uint64_t seed, uint64_t base, double low, double high);
void fill_normal(const Tensor& dst, uint64_t seed, uint64_t base, double mean, double std);
void fill_randint(const Tensor& dst, uint64_t seed, uint64_t base, int64_t low, int64_t high);
}  // namespace cuda
#endif

// ---------------------------------------------------------------- shapes

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << ']';
  return os.str();
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t v : s) n *= v;
  return n;
}

Shape contiguous_strides(const Shape& s) {
  Shape st(s.size());
  int64_t acc = 1;
  for (int64_t i = static_cast<int64_t>(s.size()) - 1; i >= 0; --i) {
    st[i] = acc;
    acc *= std::max<int64_t>(s[i], 1);
  }
  return st;
}

int64_t wrap_dim(int64_t d, int64_t rank, const char* op) {
  const int64_t r = std::max<int64_t>(rank, 1);
  OAR_CHECK(d >= -r && d < r, op, ": dimension ", d, " out of range for a tensor of rank ", rank,
            " (allowed: ", -r, "..", r - 1, ")");
  return d < 0 ? d + r : d;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    OAR_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", shape_str(a), " and ", shape_str(b),
              " cannot be broadcast together (dimension ", i, ": ", da, " vs ", db, ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

// ---------------------------------------------------------------- storage

Storage::Storage(size_t n, Device d) : nbytes(n), device(d) {
  data = allocator_for(d).allocate(n);
}
Storage::Storage(void* p, size_t n, Device d, std::function<void(void*)> del)
    : data(p), nbytes(n), device(d), deleter(std::move(del)) {
  if (!deleter) deleter = [](void*) {};  // borrowed memory
}
Storage::~Storage() {
  if (deleter) {
    deleter(data);
  } else {
    allocator_for(device).deallocate(data, nbytes);
  }
}

// ---------------------------------------------------------------- basic accessors

namespace {
Tensor make_view(const Tensor& base, Shape shape, Shape strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.impl()->storage;
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dtype = base.dtype();
  return Tensor(impl);
}
}  // namespace

int64_t Tensor::size(int64_t d) const {
  return impl_->shape[wrap_dim(d, dim(), "size")];
}
int64_t Tensor::stride(int64_t d) const {
  return impl_->strides[wrap_dim(d, dim(), "stride")];
}

bool sole_owner(const Tensor& t, long handles) {
  return t.impl_ptr().use_count() <= handles && t.impl()->storage.use_count() == 1 &&
         t.is_contiguous();
}

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (int64_t i = dim() - 1; i >= 0; --i) {
    if (impl_->shape[i] == 1) continue;
    if (impl_->strides[i] != expected) return false;
    expected *= impl_->shape[i];
  }
  return true;
}

void* Tensor::raw_data() const {
  OAR_CHECK(defined(), "data of an undefined tensor");
  return static_cast<char*>(impl_->storage->data) +
         impl_->offset * static_cast<int64_t>(dtype_size(impl_->dtype));
}

void Tensor::check_type(DType t) const {
  OAR_CHECK(defined(), "data of an undefined tensor");
  OAR_CHECK(t == impl_->dtype, "data<", dtype_name(t), ">() on a tensor of dtype ",
            dtype_name(impl_->dtype));
}

double Tensor::item_double() const {
  OAR_CHECK(numel() == 1, "item() on a tensor of shape ", shape_str(shape()),
            " (exactly one element required)");
  Tensor c = device().is_cpu() ? *this : to(Device::cpu());
  double v = 0;
  OAR_DTYPE_SWITCH(c.dtype(), v = to_double(*static_cast<const T*>(c.raw_data())));
  return v;
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  Tensor c = to(Device::cpu()).to(dtype_of<T>::value).contiguous();
  const T* p = c.data<T>();
  return std::vector<T>(p, p + c.numel());
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;
template std::vector<uint8_t> Tensor::to_vector<uint8_t>() const;
template std::vector<bool> Tensor::to_vector<bool>() const;

// ---------------------------------------------------------------- views

Tensor Tensor::view(const Shape& shape_in) const {
  Shape shape = shape_in;
  int64_t infer = -1, known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      OAR_CHECK(infer < 0, "view: more than one -1 in ", shape_str(shape_in));
      infer = static_cast<int64_t>(i);
    } else {
      OAR_CHECK(shape[i] >= 0, "view: negative size in ", shape_str(shape_in));
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    OAR_CHECK(known != 0 && numel() % known == 0, "view: cannot infer -1 in ", shape_str(shape_in),
              " for ", numel(), " elements");
    shape[infer] = numel() / known;
  }
  OAR_CHECK(shape_numel(shape) == numel(), "view: shape ", shape_str(shape_in), " has ",
            shape_numel(shape), " elements, tensor of shape ", shape_str(this->shape()), " has ",
            numel());
  // Compute strides for the new shape if the memory layout allows (as torch's computeStride).
  Shape new_strides(shape.size());
  if (is_contiguous()) {
    new_strides = contiguous_strides(shape);
  } else {
    const Shape& os = impl_->shape;
    const Shape& ost = impl_->strides;
    int64_t view_d = static_cast<int64_t>(shape.size()) - 1;
    int64_t chunk_base_stride = ost.empty() ? 1 : ost.back();
    int64_t tensor_numel = 1, view_numel = 1;
    bool ok = true;
    for (int64_t td = static_cast<int64_t>(os.size()) - 1; td >= 0; --td) {
      tensor_numel *= os[td];
      if (td == 0 || (os[td - 1] != 1 && ost[td - 1] != tensor_numel * chunk_base_stride)) {
        while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
          new_strides[view_d] = view_numel * chunk_base_stride;
          view_numel *= shape[view_d];
          --view_d;
        }
        if (view_numel != tensor_numel) {
          ok = false;
          break;
        }
        if (td > 0) {
          chunk_base_stride = ost[td - 1];
          tensor_numel = 1;
          view_numel = 1;
        }
      }
    }
    if (!ok || view_d != -1) {
      OAR_FAIL("view: shape ", shape_str(shape_in), " is incompatible with the strides of a ",
               shape_str(this->shape()), " tensor; use reshape()");
    }
  }
  Tensor out = make_view(*this, shape, new_strides, offset());
  if (autograd::needs_grad({*this})) {
    Shape in_shape = this->shape();
    autograd::record("view", {&out}, {*this}, [in_shape](const autograd::Grads& g) {
      return autograd::TensorList{g[0].reshape(in_shape)};
    });
  }
  return out;
}

Tensor Tensor::reshape(const Shape& shape) const {
  try {
    return view(shape);
  } catch (const Error&) {
    return contiguous().view(shape);
  }
}

Tensor Tensor::flatten(int64_t start, int64_t end) const {
  if (dim() == 0) return reshape({1});
  start = wrap_dim(start, dim(), "flatten");
  end = wrap_dim(end, dim(), "flatten");
  OAR_CHECK(start <= end, "flatten: start ", start, " after end ", end);
  Shape s(shape().begin(), shape().begin() + start);
  int64_t m = 1;
  for (int64_t i = start; i <= end; ++i) m *= shape()[i];
  s.push_back(m);
  s.insert(s.end(), shape().begin() + end + 1, shape().end());
  return reshape(s);
}

Tensor Tensor::permute(const Shape& dims) const {
  OAR_CHECK(static_cast<int64_t>(dims.size()) == dim(), "permute: ", dims.size(),
            " dimensions given for a tensor of rank ", dim());
  Shape shape(dims.size()), strides(dims.size()), inverse(dims.size());
  std::vector<bool> used(dims.size(), false);
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t d = wrap_dim(dims[i], dim(), "permute");
    OAR_CHECK(!used[d], "permute: dimension ", d, " repeated in ", shape_str(dims));
    used[d] = true;
    shape[i] = impl_->shape[d];
    strides[i] = impl_->strides[d];
    inverse[d] = static_cast<int64_t>(i);
  }
  Tensor out = make_view(*this, shape, strides, offset());
  if (autograd::needs_grad({*this})) {
    autograd::record("permute", {&out}, {*this}, [inverse](const autograd::Grads& g) {
      return autograd::TensorList{g[0].permute(inverse)};
    });
  }
  return out;
}

Tensor Tensor::transpose(int64_t a, int64_t b) const {
  a = wrap_dim(a, dim(), "transpose");
  b = wrap_dim(b, dim(), "transpose");
  Shape p(dim());
  std::iota(p.begin(), p.end(), 0);
  std::swap(p[a], p[b]);
  return permute(p);
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
  d = wrap_dim(d, dim(), "slice");
  OAR_CHECK(step > 0, "slice: step must be positive, got ", step);
  const int64_t n = impl_->shape[d];
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape shape = impl_->shape, strides = impl_->strides;
  shape[d] = (end - start + step - 1) / step;
  strides[d] *= step;
  Tensor out = make_view(*this, shape, strides, offset() + start * impl_->strides[d]);
  if (autograd::needs_grad({*this})) {
    Shape in_shape = this->shape();
    DType dt = dtype();
    autograd::record("slice", {&out}, {*this},
                     [in_shape, dt, d, start, end, step](const autograd::Grads& g) {
                       Tensor z = zeros(in_shape, dt, g[0].device());
                       z.slice(d, start, end, step).copy_(g[0]);
                       return autograd::TensorList{z};
                     });
  }
  return out;
}

Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const {
  d = wrap_dim(d, dim(), "narrow");
  OAR_CHECK(start >= 0 && length >= 0 && start + length <= size(d), "narrow: [", start, ", ",
            start + length, ") out of range for dimension ", d, " of size ", size(d));
  return slice(d, start, start + length);
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  d = wrap_dim(d, dim(), "select");
  const int64_t n = size(d);
  OAR_CHECK(index >= -n && index < n, "select: index ", index, " out of range for dimension ", d,
            " of size ", n);
  if (index < 0) index += n;
  return slice(d, index, index + 1).squeeze(d);
}

Tensor Tensor::expand(const Shape& shape_in) const {
  OAR_CHECK(static_cast<int64_t>(shape_in.size()) >= dim(), "expand: target ", shape_str(shape_in),
            " has fewer dimensions than ", shape_str(shape()));
  const size_t lead = shape_in.size() - static_cast<size_t>(dim());
  Shape shape(shape_in.size()), strides(shape_in.size());
  for (size_t i = 0; i < shape_in.size(); ++i) {
    if (i < lead) {
      OAR_CHECK(shape_in[i] >= 0, "expand: new leading size must be given, got -1");
      shape[i] = shape_in[i];
      strides[i] = 0;
      continue;
    }
    const int64_t cur = impl_->shape[i - lead];
    const int64_t want = shape_in[i] == -1 ? cur : shape_in[i];
    OAR_CHECK(cur == want || cur == 1, "expand: cannot expand ", shape_str(this->shape()), " to ",
              shape_str(shape_in), " (dimension ", i, ")");
    shape[i] = want;
    strides[i] = cur == want ? impl_->strides[i - lead] : 0;
  }
  Tensor out = make_view(*this, shape, strides, offset());
  if (autograd::needs_grad({*this})) {
    Shape in_shape = this->shape();
    autograd::record("expand", {&out}, {*this}, [in_shape](const autograd::Grads& g) {
      return autograd::TensorList{sum_to(g[0], in_shape)};
    });
  }
  return out;
}

Tensor Tensor::squeeze(int64_t d) const {
  d = wrap_dim(d, dim(), "squeeze");
  if (dim() == 0 || size(d) != 1) return *this;
  Shape s = shape();
  s.erase(s.begin() + d);
  return view(s);
}

Tensor Tensor::squeeze() const {
  Shape s;
  for (int64_t v : shape())
    if (v != 1) s.push_back(v);
  return s.size() == shape().size() ? *this : view(s);
}

Tensor Tensor::unsqueeze(int64_t d) const {
  d = wrap_dim(d, dim() + 1, "unsqueeze");
  Shape s = shape();
  s.insert(s.begin() + d, 1);
  return view(s);
}

// ---------------------------------------------------------------- copies

Tensor& Tensor::copy_(const Tensor& src) {
  OAR_CHECK(defined() && src.defined(), "copy_: undefined tensor");
  if (src.shape() != shape()) broadcast_shapes(src.shape(), shape(), "copy_");
  if (src.device() != device()) {
    OAR_DISPATCH_GPU(src.device().is_cpu() ? device() : src.device(), copy, *this, src);
  } else {
    OAR_DISPATCH_GPU(device(), copy, *this, src);
  }
  ++impl_->storage->version;
  return *this;
}

Tensor& Tensor::fill_(double value) {
  OAR_DISPATCH_GPU(device(), fill, *this, value);
  ++impl_->storage->version;
  return *this;
}

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype(), device());
  out.copy_(*this);
  if (autograd::needs_grad({*this})) {
    autograd::record("clone", {&out}, {*this},
                     [](const autograd::Grads& g) { return autograd::TensorList{g[0]}; });
  }
  return out;
}

Tensor Tensor::to(DType t) const {
  if (t == dtype()) return *this;
  Tensor out = empty(shape(), t, device());
  out.copy_(*this);
  if (autograd::needs_grad({*this}) && is_floating(t) && is_floating(dtype())) {
    DType src = dtype();
    autograd::record("to_dtype", {&out}, {*this}, [src](const autograd::Grads& g) {
      return autograd::TensorList{g[0].to(src)};
    });
  }
  return out;
}

Tensor Tensor::to(Device d) const {
  if (d == device()) return *this;
  Tensor out = empty(shape(), dtype(), d);
  out.copy_(*this);
  if (autograd::needs_grad({*this})) {
    Device src = device();
    autograd::record("to_device", {&out}, {*this}, [src](const autograd::Grads& g) {
      return autograd::TensorList{g[0].to(src)};
    });
  }
  return out;
}

// ---------------------------------------------------------------- autograd

bool Tensor::requires_grad() const {
  return defined() && (impl_->requires_grad || impl_->grad_fn != nullptr);
}

Tensor& Tensor::set_requires_grad(bool r) {
  OAR_CHECK(is_leaf(), "set_requires_grad on a non-leaf tensor (detach() it first)");
  OAR_CHECK(!r || is_floating(dtype()), "only floating tensors can require grad, not ",
            dtype_name(dtype()));
  impl_->requires_grad = r;
  return *this;
}

Tensor Tensor::detach() const {
  return make_view(*this, shape(), strides(), offset());
}

void Tensor::backward(const Tensor& grad) const {
  autograd::backward({*this}, {grad});
}

// ---------------------------------------------------------------- printing

std::string Tensor::str(int64_t max_per_dim) const {
  std::ostringstream os;
  if (!defined()) return "Tensor(undefined)";
  Tensor c = to(Device::cpu()).contiguous();
  std::vector<double> v(c.numel());
  OAR_DTYPE_SWITCH(c.dtype(), {
    const T* p = static_cast<const T*>(c.raw_data());
    for (int64_t i = 0; i < c.numel(); ++i) v[i] = to_double(p[i]);
  });
  const Shape& s = c.shape();
  const Shape st = contiguous_strides(s);
  std::function<void(int64_t, int64_t)> rec = [&](int64_t d, int64_t base) {
    if (d == static_cast<int64_t>(s.size())) {
      os << std::setprecision(6) << v[base];
      return;
    }
    os << '[';
    for (int64_t i = 0; i < s[d]; ++i) {
      if (s[d] > max_per_dim && i == max_per_dim / 2) {
        os << "..., ";
        i = s[d] - max_per_dim / 2 - 1;
        continue;
      }
      if (i) os << ", ";
      rec(d + 1, base + i * st[d]);
    }
    os << ']';
  };
  os << "Tensor(";
  rec(0, 0);
  os << ", shape=" << shape_str(s) << ", dtype=" << dtype_name(dtype())
     << ", device=" << device().str();
  if (requires_grad()) os << ", requires_grad";
  os << ')';
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  return os << t.str();
}

// ---------------------------------------------------------------- creation

Tensor empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t v : shape) OAR_CHECK(v >= 0, "empty: negative size in shape ", shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(shape_numel(shape) * dtype_size(dtype), device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(impl);
}

Tensor full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_(value);
  return t;
}
Tensor zeros(const Shape& shape, DType dtype, Device device) {
  return full(shape, 0, dtype, device);
}
Tensor ones(const Shape& shape, DType dtype, Device device) {
  return full(shape, 1, dtype, device);
}
Tensor empty_like(const Tensor& t) {
  return empty(t.shape(), t.dtype(), t.device());
}
Tensor zeros_like(const Tensor& t) {
  return zeros(t.shape(), t.dtype(), t.device());
}
Tensor ones_like(const Tensor& t) {
  return ones(t.shape(), t.dtype(), t.device());
}
Tensor full_like(const Tensor& t, double v) {
  return full(t.shape(), v, t.dtype(), t.device());
}
Tensor scalar_tensor(double value, DType dtype, Device device) {
  return full({}, value, dtype, device);
}

Tensor arange(double start, double end, double step, DType dtype) {
  OAR_CHECK(step != 0, "arange: step must not be zero");
  const int64_t n = std::max<int64_t>(0, static_cast<int64_t>(std::ceil((end - start) / step)));
  Tensor t = empty({n}, dtype);
  OAR_DTYPE_SWITCH(dtype, {
    T* p = static_cast<T*>(t.raw_data());
    for (int64_t i = 0; i < n; ++i) p[i] = from_double<T>(start + static_cast<double>(i) * step);
  });
  return t;
}
Tensor arange(int64_t end, DType dtype) {
  return arange(0.0, static_cast<double>(end), 1.0, dtype);
}

Tensor rand(const Shape& shape, Generator* gen, double low, double high, DType dtype,
            Device device) {
  Generator& g = gen ? *gen : default_generator();
  Tensor t = empty(shape, dtype, device);
  OAR_DISPATCH_GPU(device, fill_uniform, t, g.seed(), g.reserve(static_cast<uint64_t>(t.numel())),
                   low, high);
  return t;
}

Tensor randn(const Shape& shape, Generator* gen, double mean, double std, DType dtype,
             Device device) {
  Generator& g = gen ? *gen : default_generator();
  Tensor t = empty(shape, dtype, device);
  OAR_DISPATCH_GPU(device, fill_normal, t, g.seed(),
                   g.reserve(2 * static_cast<uint64_t>(t.numel())), mean, std);
  return t;
}

Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator* gen, DType dtype,
               Device device) {
  OAR_CHECK(high > low, "randint: empty range [", low, ", ", high, ")");
  Generator& g = gen ? *gen : default_generator();
  Tensor t = empty(shape, dtype, device);
  OAR_DISPATCH_GPU(device, fill_randint, t, g.seed(), g.reserve(static_cast<uint64_t>(t.numel())),
                   low, high);
  return t;
}

Tensor from_blob(void* data, const Shape& shape, DType dtype, std::function<void(void*)> deleter,
                 Device device) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(data, shape_numel(shape) * dtype_size(dtype), device,
                                            std::move(deleter));
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(impl);
}

template <typename T>
Tensor tensor(const std::vector<T>& values, const Shape& shape) {
  OAR_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape), "tensor: ", values.size(),
            " values for shape ", shape_str(shape));
  Tensor t = empty(shape, dtype_of<T>::value);
  T* p = static_cast<T*>(t.raw_data());
  for (size_t i = 0; i < values.size(); ++i) p[i] = values[i];
  return t;
}
template Tensor tensor<float>(const std::vector<float>&, const Shape&);
template Tensor tensor<int64_t>(const std::vector<int64_t>&, const Shape&);
template Tensor tensor<int32_t>(const std::vector<int32_t>&, const Shape&);
template Tensor tensor<uint8_t>(const std::vector<uint8_t>&, const Shape&);
template Tensor tensor<bool>(const std::vector<bool>&, const Shape&);

}  // namespace oar
