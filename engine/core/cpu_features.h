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
// "avx2 fma avx512f ... amx_bf16"
std::string cpu_features_string();

}  // namespace oar
