#pragma once
// What the CPU offers (for `oar version` and kernel choices).
#include <string>

namespace oar {

struct CpuFeatures {
  bool avx2 = false, fma = false, avx512f = false, avx512bw = false, avx512_vnni = false,
       avx512_bf16 = false, amx_tile = false, amx_bf16 = false, amx_int8 = false;
  int logical_cores = 0;
  std::string brand;
};

const CpuFeatures& cpu_features();

// AVX-512 F, DQ, BW and VL, with the OS saving the 512-bit registers: what every kernel built
// with OAR_TARGET_AVX512 needs (the project itself builds for AVX2, so those kernels run only
// where this says so).
bool cpu_has_avx512();
#define OAR_TARGET_AVX512 \
  __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,prefer-vector-width=512")))
// "avx2 fma avx512f ... amx_bf16"
std::string cpu_features_string();

}  // namespace oar
