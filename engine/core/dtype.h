#pragma once
// Element types and the conversions between them (bf16 and f16 are stored as raw 16-bit words).
#include <cstdint>
#include <cstring>
#include <string>

namespace oar {

enum class DType : uint8_t { f32, bf16, f16, i64, i32, u8, boolean };
constexpr int kNumDTypes = 7;

size_t dtype_size(DType t);
const char* dtype_name(DType t);
// Parses "f32", "float32", "bf16", "bfloat16", "f16", "float16", "i64", "int64", "i32", "int32",
// "u8", "uint8", "bool"; throws on anything else.
DType dtype_from_name(const std::string& name);
bool is_floating(DType t);

struct bf16 {
  uint16_t bits;
};
struct f16 {
  uint16_t bits;
};

inline float bf16_to_float(uint16_t b) {
  uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
// Round to nearest even; NaN stays NaN.
inline uint16_t float_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
float f16_to_float(uint16_t h);
uint16_t float_to_f16(float f);

// Maps a C++ type to its DType.
template <typename T>
struct dtype_of;
template <>
struct dtype_of<float> {
  static constexpr DType value = DType::f32;
};
template <>
struct dtype_of<bf16> {
  static constexpr DType value = DType::bf16;
};
template <>
struct dtype_of<f16> {
  static constexpr DType value = DType::f16;
};
template <>
struct dtype_of<int64_t> {
  static constexpr DType value = DType::i64;
};
template <>
struct dtype_of<int32_t> {
  static constexpr DType value = DType::i32;
};
template <>
struct dtype_of<uint8_t> {
  static constexpr DType value = DType::u8;
};
template <>
struct dtype_of<bool> {
  static constexpr DType value = DType::boolean;
};

// Scalar conversions through float/double used by generic kernels.
template <typename T>
inline double to_double(T v) {
  return static_cast<double>(v);
}
template <>
inline double to_double<bf16>(bf16 v) {
  return bf16_to_float(v.bits);
}
template <>
inline double to_double<f16>(f16 v) {
  return f16_to_float(v.bits);
}
template <typename T>
inline T from_double(double v) {
  return static_cast<T>(v);
}
template <>
inline bf16 from_double<bf16>(double v) {
  return bf16{float_to_bf16(static_cast<float>(v))};
}
template <>
inline f16 from_double<f16>(double v) {
  return f16{float_to_f16(static_cast<float>(v))};
}
template <>
inline bool from_double<bool>(double v) {
  return v != 0.0;
}

}  // namespace oar

// OAR_DTYPE_SWITCH(dt, T, body): runs body with T bound to the C++ type of dt.
#define OAR_DTYPE_CASE(enumv, type, ...) \
  case ::oar::DType::enumv: {            \
    using T = type;                      \
    __VA_ARGS__;                         \
    break;                               \
  }
#define OAR_DTYPE_SWITCH(dt, ...)                  \
  switch (dt) {                                    \
    OAR_DTYPE_CASE(f32, float, __VA_ARGS__)        \
    OAR_DTYPE_CASE(bf16, ::oar::bf16, __VA_ARGS__) \
    OAR_DTYPE_CASE(f16, ::oar::f16, __VA_ARGS__)   \
    OAR_DTYPE_CASE(i64, int64_t, __VA_ARGS__)      \
    OAR_DTYPE_CASE(i32, int32_t, __VA_ARGS__)      \
    OAR_DTYPE_CASE(u8, uint8_t, __VA_ARGS__)       \
    OAR_DTYPE_CASE(boolean, bool, __VA_ARGS__)     \
  }
