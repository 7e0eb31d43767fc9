#include "readers/features/feature_dataset.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "engine/core/error.h"
#include "readers/features/feature_file.h"
#include "readers/registry.h"

namespace fs = std::filesystem;

namespace oar::readers {

std::vector<std::string> read_feature_list(const std::string& list, const std::string& root) {
  std::vector<std::string> files;
  if (fs::is_directory(list)) {
    std::error_code ec;
    for (fs::directory_iterator it(list, ec), end; !ec && it != end; it.increment(ec))
      if (it->is_regular_file() && it->path().extension() == ".safetensors")
        files.push_back(it->path().string());
    OAR_CHECK(!ec, list, ": cannot list (", ec.message(), ")");
    std::sort(files.begin(), files.end());
    OAR_CHECK(!files.empty(), list, ": no .safetensors feature files in this folder");
    return files;
  }
  std::ifstream in(list);
  OAR_CHECK(in.good(), list, ": cannot read the feature list");
  const fs::path base = root.empty() ? fs::path(list).parent_path() : fs::path(root);
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
      line.pop_back();
    const size_t first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    const fs::path p(line.substr(first));
    files.push_back((p.is_absolute() ? p : base / p).lexically_normal().string());
  }
  OAR_CHECK(!files.empty(), list, ": no feature files listed");
  return files;
}

FeatureDataset::FeatureDataset(std::vector<std::string> files, FeatureDatasetOptions o)
    : files_(std::move(files)), o_(std::move(o)) {
  OAR_CHECK(o_.num_classes >= 1, "video_features: num_classes must be at least 1");
  OAR_CHECK(!o_.feature_names.empty(), "video_features: no feature_names");
  OAR_CHECK(o_.feature_dims.empty() || o_.feature_dims.size() == o_.feature_names.size(),
            "video_features: ", o_.feature_dims.size(), " feature_dims for ",
            o_.feature_names.size(), " feature_names");
  OAR_CHECK(o_.max_frames >= 1, "video_features: max_frames must be at least 1");
}

Example FeatureDataset::load(const std::string& path) const {
  const FeatureRecord r = read_feature_file(path);
  Example ex;
  const int64_t t = std::min(r.frames(), o_.max_frames);
  for (size_t k = 0; k < o_.feature_names.size(); ++k) {
    const std::string& name = o_.feature_names[k];
    Tensor f = r.get(name, path);
    if (!o_.feature_dims.empty() && o_.feature_dims[k] > 0)
      OAR_CHECK(f.size(1) == o_.feature_dims[k], path, ": feature '", name, "' is ", f.size(1),
                " wide, the config says ", o_.feature_dims[k]);
    ex.fields[name] = f.narrow(0, 0, t).contiguous();
  }
  ex.fields["length"] = scalar_tensor(static_cast<double>(t), DType::i64);
  Tensor label = zeros({o_.num_classes});
  float* y = label.data<float>();
  for (int64_t l : r.labels) {
    OAR_CHECK(l < o_.num_classes, path, ": label ", l, " out of range for num_classes ",
              o_.num_classes);
    y[l] = 1.0f;
  }
  ex.fields["label"] = label;
  ex.meta["path"] = path;
  ex.meta["video_id"] = r.video_id.empty() ? fs::path(path).stem().string() : r.video_id;
  return ex;
}

Example FeatureDataset::get(int64_t index, Generator&) const {
  const int64_t n = size();
  OAR_CHECK(index >= 0 && index < n, "video_features: index ", index, " out of range (", n,
            " samples)");
  std::string skipped;
  for (int64_t k = 0; k < n; ++k) {
    const std::string& path = files_[static_cast<size_t>((index + k) % n)];
    try {
      Example ex = load(path);
      if (!skipped.empty()) ex.meta["skipped"] = skipped;
      return ex;
    } catch (const std::exception& e) {
      if (!o_.skip_errors) throw;
      if (skipped.empty()) skipped = path;
      std::lock_guard<std::mutex> lock(reported_mu_);
      if (reported_.insert(path).second)
        std::fprintf(stderr, "warning: %s; skipped (on_error: skip)\n", e.what());
    }
  }
  OAR_FAIL("video_features: no feature file could be read (first failure: ", skipped, ")");
}

Batch FeatureDataset::collate(std::vector<Example>& examples) const {
  OAR_CHECK(!examples.empty(), "video_features: empty batch");
  const int64_t b = static_cast<int64_t>(examples.size());
  int64_t t_max = 0;
  for (const auto& ex : examples) t_max = std::max(t_max, ex.fields.at("length").item<int64_t>());
  if (o_.pad_to_max_frames) t_max = o_.max_frames;
  Batch batch;
  batch.size = b;
  for (const std::string& name : o_.feature_names) {
    const int64_t d = examples.front().fields.at(name).size(1);
    Tensor out = zeros({b, t_max, d});
    float* dst = out.data<float>();
    for (int64_t i = 0; i < b; ++i) {
      const Tensor& f = examples[static_cast<size_t>(i)].fields.at(name);
      OAR_CHECK(f.size(1) == d, "video_features: feature '", name, "' is ", f.size(1), " wide in ",
                examples[static_cast<size_t>(i)].meta.at("path").as_string(), " but ", d, " in ",
                examples.front().meta.at("path").as_string(),
                " (set feature_dims to catch this per file)");
      std::memcpy(dst + i * t_max * d, f.data<float>(),
                  static_cast<size_t>(f.numel()) * sizeof(float));
    }
    batch.tensors[name] = out;
  }
  std::vector<int64_t> lengths;
  Tensor labels = empty({b, o_.num_classes});
  for (int64_t i = 0; i < b; ++i) {
    Example& ex = examples[static_cast<size_t>(i)];
    lengths.push_back(ex.fields.at("length").item<int64_t>());
    std::memcpy(labels.data<float>() + i * o_.num_classes, ex.fields.at("label").data<float>(),
                static_cast<size_t>(o_.num_classes) * sizeof(float));
    batch.meta.push_back(std::move(ex.meta));
  }
  batch.tensors["length"] = tensor(lengths, {b});
  batch.tensors["label"] = labels;
  return batch;
}

void register_feature_readers() {
  static bool done = false;
  if (done) return;
  done = true;
  Schema s("reader", "video_features",
           "per-frame video features, one oar feature file (.safetensors) per video "
           "(docs/video/features.md)");
  s.required_path("list", "a list of feature files (one per line) or a folder of them")
      .path("root", "", "folder the listed paths are relative to (default: the list's folder)")
      .required<int64_t>("num_classes", "classes of the multi-hot label")
      .min(1)
      .key<std::vector<std::string>>("feature_names", {"rgb", "audio"},
                                     "features to read, in order")
      .key<std::vector<int64_t>>("feature_dims", {1024, 128},
                                 "expected width of each feature (0: any)")
      .min(0)
      .key<int64_t>("max_frames", 300, "frames kept per video (the first ones)")
      .min(1)
      .key<std::string>("pad_to", "batch",
                        "pad a batch to its longest video (batch) or to max_frames")
      .choices({"batch", "max_frames"})
      .key<std::string>("on_error", "fail",
                        "an unreadable file: fail (error naming it) or skip (warn once, use the "
                        "next readable sample)")
      .choices({"fail", "skip"});
  add_loader_keys(s);
  set_input_key("video_features", "list");
  datasets().add(s, [](const Config& c, const std::string& k, DataContext) {
    FeatureDatasetOptions o;
    o.num_classes = c.get<int64_t>(k + ".num_classes");
    o.feature_names = c.get<std::vector<std::string>>(k + ".feature_names");
    o.feature_dims = c.get<std::vector<int64_t>>(k + ".feature_dims");
    if (!o.feature_dims.empty() && o.feature_dims.size() != o.feature_names.size())
      throw c.error(k + ".feature_dims",
                    std::to_string(o.feature_dims.size()) + " widths for " +
                        std::to_string(o.feature_names.size()) + " feature_names",
                    "one width per feature (0: any)");
    o.max_frames = c.get<int64_t>(k + ".max_frames");
    o.pad_to_max_frames = c.get<std::string>(k + ".pad_to") == "max_frames";
    o.skip_errors = c.get<std::string>(k + ".on_error") == "skip";
    std::vector<std::string> files;
    try {
      files =
          read_feature_list(c.get<std::string>(k + ".list"), c.get<std::string>(k + ".root", ""));
    } catch (const std::exception& e) {
      throw c.error(k + ".list", e.what());
    }
    return std::make_shared<FeatureDataset>(std::move(files), std::move(o));
  });
}

}  // namespace oar::readers
