// CUDA kernels for broadcasting binary ops and comparisons (the cpu/binary.cpp contract) and the
// in-place add_scaled_ / scale_.
#include "engine/ops/cuda/loops.cuh"

namespace oar {
enum class BinaryOp {
  add,
  sub,
  mul,
  div,
  pow,
  maximum,
  minimum,
  eq,
  ne,
  lt,
  le,
  gt,
  ge,
  land,
  lor,
  lxor
};

namespace cuda {

namespace {

template <typename T>
void binary_typed(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  using C = typename compute_type<T>::type;
  auto arith = [&](auto f) { map2<T, T, T>(out, a, b, f); };
  auto compare = [&](auto f) { map2<bool, T, T>(out, a, b, f); };
  switch (op) {
    case BinaryOp::add:
      arith([] __device__(C x, C y) { return static_cast<C>(x + y); });
      break;
    case BinaryOp::sub:
      arith([] __device__(C x, C y) { return static_cast<C>(x - y); });
      break;
    case BinaryOp::mul:
      if constexpr (std::is_same_v<C, bool>) {
        arith([] __device__(C x, C y) { return x && y; });
      } else {
        arith([] __device__(C x, C y) { return static_cast<C>(x * y); });
      }
      break;
    case BinaryOp::div:
      if constexpr (std::is_floating_point_v<C>) {
        arith([] __device__(C x, C y) { return x / y; });
      } else {
        // The CPU throws on integer division by zero; a kernel cannot, so it yields 0.
        arith(
            [] __device__(C x, C y) { return y == 0 ? static_cast<C>(0) : static_cast<C>(x / y); });
      }
      break;
    case BinaryOp::pow:
      if constexpr (std::is_same_v<C, float>) {
        arith([] __device__(C x, C y) { return ::powf(x, y); });
      } else {
        arith([] __device__(C x, C y) {
          return static_cast<C>(::pow(static_cast<double>(x), static_cast<double>(y)));
        });
      }
      break;
    case BinaryOp::maximum:
      arith([] __device__(C x, C y) { return (x >= y || x != x) ? x : y; });
      break;
    case BinaryOp::minimum:
      arith([] __device__(C x, C y) { return (x <= y || x != x) ? x : y; });
      break;
    case BinaryOp::eq:
      compare([] __device__(C x, C y) { return x == y; });
      break;
    case BinaryOp::ne:
      compare([] __device__(C x, C y) { return x != y; });
      break;
    case BinaryOp::lt:
      compare([] __device__(C x, C y) { return x < y; });
      break;
    case BinaryOp::le:
      compare([] __device__(C x, C y) { return x <= y; });
      break;
    case BinaryOp::gt:
      compare([] __device__(C x, C y) { return x > y; });
      break;
    case BinaryOp::ge:
      compare([] __device__(C x, C y) { return x >= y; });
      break;
    case BinaryOp::land:
      compare([] __device__(C x, C y) { return x && y; });
      break;
    case BinaryOp::lor:
      compare([] __device__(C x, C y) { return x || y; });
      break;
    case BinaryOp::lxor:
      compare([] __device__(C x, C y) { return bool(x) != bool(y); });
      break;
  }
}

template <typename T>
void add_scaled_typed(const Tensor& a, const Tensor& b, double alpha) {
  using C = typename compute_type<T>::type;
  const C al = static_cast<C>(alpha);
  if (alpha == 1.0) {
    map2<T, T, T>(a, a, b, [] __device__(C x, C y) { return static_cast<C>(x + y); });
  } else if constexpr (std::is_same_v<C, bool>) {
    map2<T, T, T>(a, a, b, [al] __device__(C x, C y) { return x || (al && y); });
  } else {
    map2<T, T, T>(a, a, b, [al] __device__(C x, C y) { return static_cast<C>(x + al * y); });
  }
}

template <typename T>
void scale_typed(const Tensor& a, double s) {
  using C = typename compute_type<T>::type;
  const C sc = static_cast<C>(s);
  if constexpr (std::is_same_v<C, bool>) {
    map1<T, T>(a, a, [sc] __device__(C x) { return x && sc; });
  } else {
    map1<T, T>(a, a, [sc] __device__(C x) { return static_cast<C>(x * sc); });
  }
}

}  // namespace

void binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  OAR_DTYPE_SWITCH(a.dtype(), binary_typed<T>(op, out, a, b));
}

void add_scaled_(const Tensor& a, const Tensor& b, double alpha) {
  OAR_DTYPE_SWITCH(a.dtype(), add_scaled_typed<T>(a, b, alpha));
}

void scale_(const Tensor& a, double s) {
  OAR_DTYPE_SWITCH(a.dtype(), scale_typed<T>(a, s));
}

}  // namespace cuda
}  // namespace oar
