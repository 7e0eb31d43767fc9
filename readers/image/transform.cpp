#include "readers/image/transform.h"

#include <cmath>

#include "engine/core/error.h"

namespace oar::readers {

Registry<Transform>& transforms() {
  static auto* r = new Registry<Transform>("transform");
  return *r;
}

Registry<BatchTransform>& batch_transforms() {
  static auto* r = new Registry<BatchTransform>("transform");
  return *r;
}

void register_transforms() {
  static bool done = false;
  if (done) return;
  done = true;
  register_geometric_transforms();
  register_photometric_transforms();
  register_mix_transforms();
}

namespace {
template <typename T>
std::vector<std::shared_ptr<const T>> make_list(const Config& config, const std::string& key,
                                                Registry<T>& reg, const char* other_key) {
  std::vector<std::shared_ptr<const T>> out;
  const YAML::Node n = config.node(key);
  if (!n.IsDefined() || n.IsNull()) return out;
  if (!n.IsSequence())
    throw config.error(key, "expected a list of transforms, got " + describe_value(n),
                       "a list of maps such as {name: resize, size: 256}");
  Config c = config;  // validation fills defaults
  for (size_t i = 0; i < n.size(); ++i) {
    const std::string item = key + "[" + std::to_string(i) + "]";
    if (!n[i].IsMap())
      throw config.error(item, "expected a map with a name, got " + describe_value(n[i]),
                         "{name: TRANSFORM, ...}");
    if (n[i]["name"].IsDefined() && n[i]["name"].IsScalar() && !reg.contains(n[i]["name"].Scalar()))
      if ((std::string(other_key) == "batch_transforms" &&
           transforms().contains(n[i]["name"].Scalar())) ||
          (std::string(other_key) == "transforms" &&
           batch_transforms().contains(n[i]["name"].Scalar())))
        throw config.error(item + ".name",
                           "'" + n[i]["name"].Scalar() + "' is a " +
                               (std::string(other_key) == "transforms" ? "batch" : "per-image") +
                               " transform",
                           "list it under data." + std::string(other_key));
    out.push_back(reg.create_from(c, item));
  }
  return out;
}
}  // namespace

TransformList make_transforms(const Config& config, const std::string& key) {
  TransformList out = make_list<Transform>(config, key, transforms(), "batch_transforms");
  const YAML::Node n = config.node(key);
  for (size_t i = 0; i + 1 < out.size(); ++i)
    if (n[i]["name"].Scalar() == "to_chw")
      throw config.error(key + "[" + std::to_string(i) + "].name",
                         "to_chw must be the last transform",
                         "move it to the end (or leave it out: images become CHW tensors anyway)");
  return out;
}

BatchTransformList make_batch_transforms(const Config& config, const std::string& key) {
  return make_list<BatchTransform>(config, key, batch_transforms(), "transforms");
}

void apply_all(const TransformList& list, Image& img, Generator& rng) {
  for (const auto& t : list) t->apply(img, rng);
}

SizeSpec read_size(const Config& config, const std::string& key) {
  const YAML::Node n = config.node(key);
  SizeSpec s;
  int64_t v = 0;
  if (n.IsScalar() && parse_int(n, v) && v >= 1) {
    s.height = s.width = v;
    s.single = true;
    return s;
  }
  if (n.IsSequence() && n.size() == 2) {
    int64_t h = 0, w = 0;
    if (parse_int(n[0], h) && parse_int(n[1], w) && h >= 1 && w >= 1) {
      s.height = h;
      s.width = w;
      return s;
    }
  }
  throw config.error(key,
                     "expected a positive integer or [height, width], got " + describe_value(n),
                     "e.g. 224 or [224, 224]");
}

namespace {
double sample_gamma(double a, Generator& rng) {
  if (a < 1.0) {  // Gamma(a) = Gamma(a + 1) * U^(1/a)
    double u = rng.uniform();
    return sample_gamma(a + 1.0, rng) * std::pow(std::max(u, 1e-300), 1.0 / a);
  }
  const double d = a - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
  while (true) {
    double x, v;
    do {
      x = rng.normal();
      v = 1.0 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const double u = rng.uniform();
    if (u < 1.0 - 0.0331 * x * x * x * x) return d * v;
    if (std::log(std::max(u, 1e-300)) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return d * v;
  }
}
}  // namespace

double sample_beta(double a, double b, Generator& rng) {
  const double x = sample_gamma(a, rng), y = sample_gamma(b, rng);
  return x + y > 0 ? x / (x + y) : 0.5;
}

}  // namespace oar::readers
