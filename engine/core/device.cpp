#include "engine/core/device.h"

#include "engine/core/error.h"

namespace oar {

std::string Device::str() const {
  if (type == DeviceType::CPU) return "cpu";
  return "cuda:" + std::to_string(index);
}

Device Device::parse(const std::string& s) {
  if (s == "cpu") return cpu();
  if (s == "cuda") return cuda(0);
  if (s.rfind("cuda:", 0) == 0) {
    const std::string n = s.substr(5);
    OAR_CHECK(!n.empty() && n.find_first_not_of("0123456789") == std::string::npos, "bad device '",
              s, "' (allowed: cpu, cuda, cuda:N)");
    return cuda(std::stoi(n));
  }
  OAR_FAIL("bad device '", s, "' (allowed: cpu, cuda, cuda:N)");
}

#ifndef OAR_WITH_CUDA
bool cuda_available() {
  return false;
}
#endif

}  // namespace oar
