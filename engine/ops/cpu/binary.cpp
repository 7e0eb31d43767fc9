#include <cmath>

#include "engine/core/error.h"
#include "engine/ops/cpu/loops.h"

namespace oar {
enum class BinaryOp { add, sub, mul, div, pow, maximum, minimum, eq, ne, lt, le, gt, ge, land, lor, lxor };

namespace cpu {

namespace {
template <typename T, typename F>
void arith(const Tensor& out, const Tensor& a, const Tensor& b, F f) {
  map2<T, T, T>(out, a, b, f);
}
template <typename T, typename F>
void compare(const Tensor& out, const Tensor& a, const Tensor& b, F f) {
  map2<bool, T, T>(out, a, b, f);
}
}  // namespace

template <typename T>
void binary_typed(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  {
    using C = typename compute_type<T>::type;
    switch (op) {
      case BinaryOp::add: arith<T>(out, a, b, [](C x, C y) { return static_cast<C>(x + y); }); break;
      case BinaryOp::sub: arith<T>(out, a, b, [](C x, C y) { return static_cast<C>(x - y); }); break;
      case BinaryOp::mul:
        if constexpr (std::is_same_v<C, bool>) {
          arith<T>(out, a, b, [](C x, C y) { return x && y; });
        } else {
          arith<T>(out, a, b, [](C x, C y) { return static_cast<C>(x * y); });
        }
        break;
      case BinaryOp::div:
        if constexpr (std::is_floating_point_v<C>) {
          arith<T>(out, a, b, [](C x, C y) { return x / y; });
        } else {
          arith<T>(out, a, b, [](C x, C y) {
            if (y == 0) OAR_FAIL("div: integer division by zero");
            return static_cast<C>(x / y);
          });
        }
        break;
      case BinaryOp::pow:
        arith<T>(out, a, b, [](C x, C y) { return static_cast<C>(std::pow(x, y)); });
        break;
      case BinaryOp::maximum:
        arith<T>(out, a, b, [](C x, C y) { return (x >= y || x != x) ? x : y; });
        break;
      case BinaryOp::minimum:
        arith<T>(out, a, b, [](C x, C y) { return (x <= y || x != x) ? x : y; });
        break;
      case BinaryOp::eq: compare<T>(out, a, b, [](C x, C y) { return x == y; }); break;
      case BinaryOp::ne: compare<T>(out, a, b, [](C x, C y) { return x != y; }); break;
      case BinaryOp::lt: compare<T>(out, a, b, [](C x, C y) { return x < y; }); break;
      case BinaryOp::le: compare<T>(out, a, b, [](C x, C y) { return x <= y; }); break;
      case BinaryOp::gt: compare<T>(out, a, b, [](C x, C y) { return x > y; }); break;
      case BinaryOp::ge: compare<T>(out, a, b, [](C x, C y) { return x >= y; }); break;
      case BinaryOp::land: compare<T>(out, a, b, [](C x, C y) { return x && y; }); break;
      case BinaryOp::lor: compare<T>(out, a, b, [](C x, C y) { return x || y; }); break;
      case BinaryOp::lxor: compare<T>(out, a, b, [](C x, C y) { return bool(x) != bool(y); }); break;
    }
  }
}

void binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  OAR_DTYPE_SWITCH(a.dtype(), binary_typed<T>(op, out, a, b));
}

template <typename T>
void add_scaled_typed(const Tensor& a, const Tensor& b, double alpha) {
  {
    using C = typename compute_type<T>::type;
    const C al = static_cast<C>(alpha);
    if (alpha == 1.0) {
      map2<T, T, T>(a, a, b, [](C x, C y) { return static_cast<C>(x + y); });
    } else {
      if constexpr (std::is_same_v<C, bool>) {
        map2<T, T, T>(a, a, b, [al](C x, C y) { return x || (al && y); });
      } else {
        map2<T, T, T>(a, a, b, [al](C x, C y) { return static_cast<C>(x + al * y); });
      }
    }
  }
}

void add_scaled_(const Tensor& a, const Tensor& b, double alpha) {
  OAR_DTYPE_SWITCH(a.dtype(), add_scaled_typed<T>(a, b, alpha));
}

template <typename T>
void scale_typed(const Tensor& a, double s) {
  {
    using C = typename compute_type<T>::type;
    const C sc = static_cast<C>(s);
    if constexpr (std::is_same_v<C, bool>) {
      map1<T, T>(a, a, [sc](C x) { return x && sc; });
    } else {
      map1<T, T>(a, a, [sc](C x) { return static_cast<C>(x * sc); });
    }
  }
}

void scale_(const Tensor& a, double s) { OAR_DTYPE_SWITCH(a.dtype(), scale_typed<T>(a, s)); }

}  // namespace cpu
}  // namespace oar
