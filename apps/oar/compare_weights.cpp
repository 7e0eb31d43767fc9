// oar tools compare-weights A B [--rtol R]: per tensor ||a-b||_2 / ||b||_2 (absolute when b is
// zero); the worst tensor decides. Used to check that distributed runs match single-process ones.
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "apps/oar/commands.h"
#include "engine/core/error.h"
#include "engine/io/safetensors.h"

namespace fs = std::filesystem;

namespace oar::app {

namespace {
std::string weights_file(const std::string& p) {
  if (fs::is_directory(p)) {
    OAR_CHECK(fs::exists(fs::path(p) / "model.safetensors"), p,
              ": a directory without model.safetensors");
    return (fs::path(p) / "model.safetensors").string();
  }
  OAR_CHECK(fs::exists(p), p, ": no such file");
  return p;
}
}  // namespace

int cmd_compare_weights(const std::string& a, const std::string& b, double rtol) {
  const auto fa = io::read_safetensors(weights_file(a)).as_map();
  const auto fb = io::read_safetensors(weights_file(b)).as_map();
  int problems = 0;
  for (const auto& [name, t] : fa)
    if (!fb.count(name)) {
      std::printf("only in %s: %s\n", a.c_str(), name.c_str());
      ++problems;
    }
  for (const auto& [name, t] : fb)
    if (!fa.count(name)) {
      std::printf("only in %s: %s\n", b.c_str(), name.c_str());
      ++problems;
    }
  double worst = 0;
  std::string worst_name;
  for (const auto& [name, ta] : fa) {
    auto it = fb.find(name);
    if (it == fb.end()) continue;
    if (ta.shape() != it->second.shape()) {
      std::printf("%s: shape %s vs %s\n", name.c_str(), shape_str(ta.shape()).c_str(),
                  shape_str(it->second.shape()).c_str());
      ++problems;
      continue;
    }
    const Tensor x = ta.to(DType::f32).contiguous(), y = it->second.to(DType::f32).contiguous();
    const float* px = x.data<float>();
    const float* py = y.data<float>();
    double d2 = 0, n2 = 0;
    for (int64_t i = 0; i < x.numel(); ++i) {
      const double d = static_cast<double>(px[i]) - py[i];
      d2 += d * d;
      n2 += static_cast<double>(py[i]) * py[i];
    }
    const double rel = n2 > 0 ? std::sqrt(d2 / n2) : std::sqrt(d2);
    if (!(rel <= worst) || worst_name.empty()) {
      worst = rel;
      worst_name = name;
    }
    if (!(rel <= rtol)) {
      std::printf("%s: relative difference %.3g > %.3g\n", name.c_str(), rel, rtol);
      ++problems;
    }
  }
  std::printf("%zu tensors; largest relative difference %.3g (%s); tolerance %.3g: %s\n", fa.size(),
              worst, worst_name.c_str(), rtol, problems ? "DIFFERENT" : "same");
  return problems ? 1 : 0;
}

}  // namespace oar::app
