#include "engine/core/cpu_features.h"

#include <cpuid.h>

#include <cstring>
#include <thread>

namespace oar {

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = [] {
    CpuFeatures c;
    unsigned a = 0, b = 0, cx = 0, d = 0;
    if (__get_cpuid_count(7, 0, &a, &b, &cx, &d)) {
      c.avx2 = b & (1u << 5);
      c.avx512f = b & (1u << 16);
      c.avx512bw = b & (1u << 30);
      c.avx512_vnni = cx & (1u << 11);
      c.amx_bf16 = d & (1u << 22);
      c.amx_tile = d & (1u << 24);
      c.amx_int8 = d & (1u << 25);
    }
    if (__get_cpuid_count(7, 1, &a, &b, &cx, &d)) c.avx512_bf16 = a & (1u << 5);
    if (__get_cpuid(1, &a, &b, &cx, &d)) c.fma = cx & (1u << 12);
    char brand[49] = {0};
    unsigned regs[12];
    if (__get_cpuid(0x80000000u, &a, &b, &cx, &d) && a >= 0x80000004u) {
      for (unsigned i = 0; i < 3; ++i)
        __get_cpuid(0x80000002u + i, &regs[i * 4], &regs[i * 4 + 1], &regs[i * 4 + 2],
                    &regs[i * 4 + 3]);
      std::memcpy(brand, regs, 48);
      const char* b = brand;
      while (*b == ' ') ++b;
      c.brand = b;
    }
    c.logical_cores = static_cast<int>(std::thread::hardware_concurrency());
    return c;
  }();
  return f;
}

bool cpu_has_avx512() {
  // __builtin_cpu_supports also checks that the OS enabled the registers (XCR0), which the cpuid
  // bits above do not.
  static const bool yes = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                          __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  return yes;
}

std::string cpu_features_string() {
  const CpuFeatures& c = cpu_features();
  std::string s;
  auto add = [&](bool on, const char* n) {
    if (!on) return;
    if (!s.empty()) s.append(" ");
    s.append(n);
  };
  add(c.avx2, "avx2");
  add(c.fma, "fma");
  add(c.avx512f, "avx512f");
  add(c.avx512bw, "avx512bw");
  add(c.avx512_vnni, "avx512_vnni");
  add(c.avx512_bf16, "avx512_bf16");
  add(c.amx_tile, "amx_tile");
  add(c.amx_bf16, "amx_bf16");
  add(c.amx_int8, "amx_int8");
  return s.empty() ? "none" : s;
}

}  // namespace oar
