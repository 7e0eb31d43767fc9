#include "readers/features/feature_file.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "engine/core/error.h"
#include "engine/io/safetensors.h"

namespace oar::readers {

Tensor quantize(const Tensor& values, const Quantization& q) {
  OAR_CHECK(q.max > q.min, "quantize: max (", q.max, ") must exceed min (", q.min, ")");
  Tensor x = values.detach().to(Device::cpu()).to(DType::f32).contiguous();
  Tensor out = empty(x.shape(), DType::u8);
  const float* src = x.data<float>();
  uint8_t* dst = out.data<uint8_t>();
  const double s = q.scalar(), b = q.bias();
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double level = std::nearbyint((static_cast<double>(src[i]) - b) / s);
    dst[i] = static_cast<uint8_t>(std::isnan(level) ? 0 : std::min(255.0, std::max(0.0, level)));
  }
  return out;
}

Tensor dequantize(const Tensor& quantized, const Quantization& q) {
  Tensor x = quantized.to(Device::cpu()).contiguous();
  OAR_CHECK(x.dtype() == DType::u8, "dequantize: expected u8 levels");
  Tensor out = empty(x.shape(), DType::f32);
  const uint8_t* src = x.data<uint8_t>();
  float* dst = out.data<float>();
  const double s = q.scalar(), b = q.bias();
  for (int64_t i = 0; i < x.numel(); ++i) dst[i] = static_cast<float>(src[i] * s + b);
  return out;
}

Tensor FeatureRecord::get(const std::string& name, const std::string& origin) const {
  for (const auto& [n, t] : features)
    if (n == name) return quantized ? dequantize(t, range) : t.to(DType::f32);
  std::string known;
  for (const auto& [n, t] : features) known += (known.empty() ? "" : ", ") + n;
  OAR_FAIL(origin.empty() ? std::string("feature record") : origin, ": no feature '", name,
           "' (it has: ", known.empty() ? std::string("none") : known, ")");
}

int64_t FeatureRecord::frames() const {
  return features.empty() ? 0 : features.front().second.size(0);
}

namespace {

std::string join_labels(const std::vector<int64_t>& labels) {
  std::string s;
  for (int64_t l : labels) {
    if (!s.empty()) s.push_back(',');
    s.append(std::to_string(l));
  }
  return s;
}

std::string number_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

double parse_number(const std::string& path, const std::string& key, const std::string& text) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  OAR_CHECK(!text.empty() && end && *end == '\0' && std::isfinite(v), path, ": metadata '", key,
            "' is not a number: '", text, "'");
  return v;
}

}  // namespace

void write_feature_file(const std::string& path, const FeatureRecord& record,
                        const FeatureWriteOptions& o) {
  OAR_CHECK(!record.features.empty(), path, ": a feature file needs at least one feature");
  const int64_t t =
      record.features.front().second.dim() == 2 ? record.features.front().second.size(0) : -1;
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const auto& [name, f] : record.features) {
    OAR_CHECK(!name.empty() && name.rfind("__", 0) != 0, path, ": bad feature name '", name, "'");
    OAR_CHECK(f.dim() == 2, path, ": feature '", name, "' must be [T, D], got ",
              shape_str(f.shape()));
    OAR_CHECK(f.size(0) == t, path, ": feature '", name, "' has ", f.size(0),
              " frames, the first feature has ", t);
    OAR_CHECK(t >= 1 && f.size(1) >= 1, path, ": feature '", name, "' is empty");
    tensors.emplace_back(name, o.quantize ? quantize(f, o.range) : f.to(DType::f32));
  }
  for (int64_t l : record.labels) OAR_CHECK(l >= 0, path, ": negative label ", l);
  std::map<std::string, std::string> meta = {{"format", kFeatureFormat},
                                             {"version", std::to_string(kFeatureFormatVersion)},
                                             {"video_id", record.video_id},
                                             {"labels", join_labels(record.labels)},
                                             {"quantization", o.quantize ? "uint8" : "none"}};
  if (o.quantize) {
    meta["min"] = number_text(o.range.min);
    meta["max"] = number_text(o.range.max);
  }
  io::write_safetensors(path, tensors, meta);
}

FeatureRecord read_feature_file(const std::string& path) {
  io::SafetensorsFile file = io::read_safetensors(path);  // its errors name the path
  auto meta = [&](const std::string& key) -> const std::string* {
    auto it = file.metadata.find(key);
    return it == file.metadata.end() ? nullptr : &it->second;
  };
  const std::string* format = meta("format");
  OAR_CHECK(format && *format == kFeatureFormat, path,
            ": not an oar video feature file (metadata 'format' is ",
            format ? "'" + *format + "'" : std::string("missing"), ", expected '", kFeatureFormat,
            "')");
  const std::string* version = meta("version");
  OAR_CHECK(version && *version == std::to_string(kFeatureFormatVersion), path,
            ": unsupported feature file version ", version ? *version : std::string("(missing)"),
            " (this reader knows ", kFeatureFormatVersion, ")");
  FeatureRecord r;
  if (const std::string* id = meta("video_id")) r.video_id = *id;
  const std::string* q = meta("quantization");
  OAR_CHECK(q && (*q == "uint8" || *q == "none"), path,
            ": metadata 'quantization' must be uint8 or none");
  r.quantized = *q == "uint8";
  if (r.quantized) {
    const std::string* mn = meta("min");
    const std::string* mx = meta("max");
    OAR_CHECK(mn && mx, path, ": a quantized feature file needs metadata 'min' and 'max'");
    r.range.min = parse_number(path, "min", *mn);
    r.range.max = parse_number(path, "max", *mx);
    OAR_CHECK(r.range.max > r.range.min, path, ": quantization max must exceed min");
  }
  if (const std::string* labels = meta("labels"); labels && !labels->empty()) {
    size_t at = 0;
    while (at <= labels->size()) {
      const size_t comma = std::min(labels->find(',', at), labels->size());
      const std::string item = labels->substr(at, comma - at);
      char* end = nullptr;
      const long long v = std::strtoll(item.c_str(), &end, 10);
      OAR_CHECK(!item.empty() && end && *end == '\0' && v >= 0, path, ": bad label '", item,
                "' in metadata 'labels' (expected comma-separated class indices)");
      r.labels.push_back(v);
      at = comma + 1;
    }
  }
  // Features in name order (data-offset order depends on dtype sizes).
  std::map<std::string, Tensor> by_name = file.as_map();
  for (auto& [name, t] : by_name) {
    OAR_CHECK(t.dim() == 2, path, ": feature '", name, "' must be [T, D], got ",
              shape_str(t.shape()));
    OAR_CHECK(t.dtype() == (r.quantized ? DType::u8 : DType::f32), path, ": feature '", name,
              "' is ", dtype_name(t.dtype()), ", expected ", r.quantized ? "U8" : "F32");
    r.features.emplace_back(name, t);
  }
  OAR_CHECK(!r.features.empty(), path, ": no features");
  for (const auto& [name, t] : r.features)
    OAR_CHECK(t.size(0) == r.frames(), path, ": feature '", name, "' has ", t.size(0), " frames, '",
              r.features.front().first, "' has ", r.frames());
  return r;
}

}  // namespace oar::readers
