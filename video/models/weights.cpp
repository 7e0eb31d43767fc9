#include "video/models/weights.h"

#include <filesystem>
#include <sstream>

#include "engine/core/error.h"
#include "engine/io/safetensors.h"
#include "engine/ops.h"

namespace oar::video {

namespace {
// Trunk entries: the stem and the four stages, without the non-local blocks attached to them.
bool is_trunk(const std::string& name) {
  const bool trunk =
      name.rfind("conv1.", 0) == 0 || name.rfind("bn1.", 0) == 0 || name.rfind("layer", 0) == 0;
  return trunk && name.find(".nonlocal.") == std::string::npos;
}
}  // namespace

Tensor map_2d_weight(const std::string& name, const Tensor& src, const Shape& target) {
  if (src.shape() == target) return src;
  if (src.dim() == 4 && target.size() == 5 && target[0] == src.size(0) &&
      target[1] == src.size(1) && target[3] == src.size(2) && target[4] == src.size(3)) {
    const int64_t kt = target[2];
    // Inflation: [O, I, kh, kw] -> [O, I, kt, kh, kw] / kt.
    return repeat(src.unsqueeze(2), {1, 1, kt, 1, 1}) * (1.0 / static_cast<double>(kt));
  }
  if (src.dim() == 4 && target.size() == 4 && target[0] == src.size(0) &&
      target[2] == src.size(2) && target[3] == src.size(3) && src.size(1) == 3 &&
      target[1] % 3 == 0) {
    const int64_t seglen = target[1] / 3;
    // StNet: mean over the RGB input channels / seglen, repeated to 3 seglen channels.
    const Tensor m = mean(src, {1}, true) * (1.0 / static_cast<double>(seglen));
    return repeat(m, {1, target[1], 1, 1});
  }
  OAR_CHECK(false, "2D ResNet weights: '", name, "' has shape ", shape_str(src.shape()),
            ", which does not map to the video model's ", shape_str(target));
  return {};
}

int64_t load_2d_resnet(VideoResNet& model, const std::map<std::string, Tensor>& state) {
  std::map<std::string, Tensor> mapped;
  std::ostringstream problems;
  int64_t n_problems = 0;
  for (const auto& [name, t] : model.state_dict()) {
    if (!is_trunk(name)) continue;
    const auto it = state.find(name);
    if (it == state.end()) {
      problems << "\n  missing: " << name;
      ++n_problems;
      continue;
    }
    try {
      Tensor v = map_2d_weight(name, it->second.contiguous(), t.shape());
      mapped[name] = v.dtype() == t.dtype() ? v : v.to(t.dtype());
    } catch (const Error& e) {
      problems << "\n  " << e.what();
      ++n_problems;
    }
  }
  OAR_CHECK(n_problems == 0, "2D ResNet weights do not fit ", model.name(), " (", n_problems,
            " problem", n_problems == 1 ? "" : "s", "):", problems.str());
  NoGradGuard no_grad;
  const nn::LoadReport report = model.load_state_dict(mapped, /*strict=*/false);
  OAR_CHECK(report.mismatched.empty() && report.unexpected.empty(),
            "2D ResNet weights: ", report.str());
  return static_cast<int64_t>(mapped.size());
}

int64_t load_2d_resnet_file(VideoResNet& model, const std::string& path) {
  OAR_CHECK(std::filesystem::is_regular_file(path), "2D ResNet weights: no file '", path, "'");
  std::map<std::string, Tensor> state;
  try {
    state = io::read_safetensors(path).as_map();
  } catch (const Error& e) {
    OAR_CHECK(false, "2D ResNet weights: cannot read '", path, "': ", e.what());
  }
  try {
    return load_2d_resnet(model, state);
  } catch (const Error& e) {
    OAR_CHECK(false, path, ": ", e.what());
  }
  return 0;
}

}  // namespace oar::video
