#pragma once
// Where a tensor lives. CUDA is a first-class value even in CPU-only builds, so dispatch,
// configs and errors can name it; kernels for it exist only when the build has CUDA.
#include <cstdint>
#include <string>

namespace oar {

enum class DeviceType : uint8_t { CPU = 0, CUDA = 1 };
constexpr int kNumDeviceTypes = 2;

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;

  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  bool is_cpu() const { return type == DeviceType::CPU; }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  std::string str() const;
  static Device cpu() { return {}; }
  static Device cuda(int i = 0) { return {DeviceType::CUDA, i}; }
  // Parses "cpu", "cuda", "cuda:N"; throws on anything else.
  static Device parse(const std::string& s);
};

// True when this build has a CUDA backend and a GPU is visible at run time.
bool cuda_available();

}  // namespace oar
