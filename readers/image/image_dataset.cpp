#include "readers/image/image_dataset.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <opencv2/core/utility.hpp>

#include "engine/core/error.h"
#include "readers/registry.h"

namespace fs = std::filesystem;

namespace oar::readers {

namespace {

std::vector<std::string> images_in(const fs::path& dir, bool recursive) {
  std::vector<std::string> out;
  std::error_code ec;
  if (recursive) {
    for (fs::recursive_directory_iterator
             it(dir, fs::directory_options::follow_directory_symlink, ec),
         end;
         !ec && it != end; it.increment(ec))
      if (it->is_regular_file() && is_image_file(it->path().string()))
        out.push_back(it->path().string());
  } else {
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
      if (it->is_regular_file() && is_image_file(it->path().string()))
        out.push_back(it->path().string());
  }
  OAR_CHECK(!ec, dir.string(), ": cannot list (", ec.message(), ")");
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

ImageSource scan_image_folder(const std::string& root) {
  OAR_CHECK(fs::is_directory(root), root,
            ": not a directory (image_folder wants root/<class>/<images>)");
  std::vector<std::string> classes;
  for (const auto& e : fs::directory_iterator(root))
    if (e.is_directory()) classes.push_back(e.path().filename().string());
  std::sort(classes.begin(), classes.end());
  ImageSource s;
  for (const std::string& cls : classes) {
    const std::vector<std::string> files = images_in(fs::path(root) / cls, true);
    if (files.empty()) continue;  // a folder without images is not a class
    const int64_t label = static_cast<int64_t>(s.class_names.size());
    s.class_names.push_back(cls);
    for (const auto& f : files) s.entries.push_back({f, label});
  }
  OAR_CHECK(!s.entries.empty(), root,
            ": no images in class sub-folders (expected root/<class>/<name>.jpg|png|bmp|webp)");
  return s;
}

ImageSource read_image_list(const std::string& list, const std::string& root) {
  std::ifstream in(list);
  OAR_CHECK(in.good(), list, ": cannot read the image list");
  const fs::path base = root.empty() ? fs::path(list).parent_path() : fs::path(root);
  ImageSource s;
  int labeled = -1;  // unknown until the first line
  std::string line;
  for (int64_t no = 1; std::getline(in, line); ++no) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
      line.pop_back();
    const size_t first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    line = line.substr(first);
    std::string path = line;
    int64_t label = -1;
    // The label is the last whitespace-separated field when it is an integer, so paths with
    // spaces work in both forms.
    const size_t sp = line.find_last_of(" \t");
    if (sp != std::string::npos) {
      const std::string tail = line.substr(sp + 1);
      char* end = nullptr;
      const long long v = std::strtoll(tail.c_str(), &end, 10);
      if (!tail.empty() && end && *end == '\0') {
        OAR_CHECK(v >= 0, list, ":", no, ": negative label ", v);
        label = v;
        path = line.substr(0, sp);
        while (!path.empty() && (path.back() == ' ' || path.back() == '\t')) path.pop_back();
      }
    }
    const int has = label >= 0 ? 1 : 0;
    OAR_CHECK(labeled < 0 || labeled == has, list, ":", no, ": ",
              has ? "a labeled line in a list of unlabeled paths"
                  : "no label (expected `relative/path label`; other lines have labels)");
    labeled = has;
    const fs::path p = fs::path(path).is_absolute() ? fs::path(path) : base / path;
    s.entries.push_back({p.lexically_normal().string(), label});
  }
  OAR_CHECK(!s.entries.empty(), list, ": no images listed");
  return s;
}

ImageSource resolve_image_input(const std::string& path) {
  if (fs::is_directory(path)) {
    ImageSource s;
    for (const auto& f : images_in(path, false)) s.entries.push_back({f, -1});
    if (!s.entries.empty()) return s;
    return scan_image_folder(path);
  }
  OAR_CHECK(fs::exists(path), path, ": no such file or directory");
  if (is_image_file(path)) return ImageSource{{{path, -1}}, {}};
  return read_image_list(path, "");
}

ImageDataset::ImageDataset(ImageSource source, ImageDatasetOptions options)
    : src_(std::move(source)), o_(std::move(options)) {
  OAR_CHECK(o_.channels == 1 || o_.channels == 3, "image reader: channels must be 1 or 3");
  // The loader's workers are the parallelism (data.num_workers, a setting); OpenCV's own pool
  // under each of them would oversubscribe the cores.
  static const bool opencv_serial = [] {
    cv::setNumThreads(1);
    return true;
  }();
  (void)opencv_serial;
  int64_t max_label = -1;
  for (const auto& e : src_.entries) max_label = std::max(max_label, e.label);
  labeled_ = !src_.entries.empty() && src_.entries.front().label >= 0;
  num_classes_ = o_.num_classes > 0          ? o_.num_classes
                 : !src_.class_names.empty() ? static_cast<int64_t>(src_.class_names.size())
                                             : max_label + 1;
  OAR_CHECK(max_label < num_classes_ || !labeled_, "image reader: label ", max_label,
            " out of range for num_classes ", num_classes_);
  OAR_CHECK(o_.batch_transforms.empty() || labeled_,
            "image reader: batch_transforms (mixup, cutmix) need labeled samples");
}

Example ImageDataset::get(int64_t index, Generator& rng) const {
  const int64_t n = size();
  OAR_CHECK(index >= 0 && index < n, "image dataset: index ", index, " out of range (", n,
            " samples)");
  Image img;
  int64_t used = index;
  std::string skipped;
  for (int64_t k = 0;; ++k) {
    OAR_CHECK(k < n, "image dataset: no sample could be decoded (first failure: ", skipped, ")");
    used = (index + k) % n;
    const std::string& path = src_.entries[static_cast<size_t>(used)].path;
    try {
      img = decode_image(path, o_.channels);
      break;
    } catch (const std::exception& e) {
      if (!o_.skip_errors) throw;
      if (skipped.empty()) skipped = path;
      std::lock_guard<std::mutex> lock(reported_mu_);
      if (reported_.insert(path).second)
        std::fprintf(stderr, "warning: %s; skipped (on_error: skip)\n", e.what());
    }
  }
  apply_all(o_.transforms, img, rng);
  const ImageEntry& e = src_.entries[static_cast<size_t>(used)];
  Example ex;
  ex.fields["image"] = image_to_chw(img);
  if (labeled_) ex.fields["label"] = scalar_tensor(static_cast<double>(e.label), DType::i64);
  if (!o_.batch_transforms.empty())  // the batch's mixing stream, derived from its samples' seeds
    ex.fields["_mix_seed"] = scalar_tensor(static_cast<double>(rng.next_u64() >> 12), DType::i64);
  ex.meta["path"] = e.path;
  if (!skipped.empty()) ex.meta["skipped"] = skipped;
  return ex;
}

Batch ImageDataset::collate(std::vector<Example>& examples) const {
  if (o_.batch_transforms.empty()) return collate_stack(examples);
  uint64_t seed = 0x6d6978ull;
  for (auto& ex : examples) {
    auto it = ex.fields.find("_mix_seed");
    if (it == ex.fields.end()) continue;
    seed = Generator::hash(seed, static_cast<uint64_t>(it->second.item<int64_t>()));
    ex.fields.erase(it);
  }
  Batch b = collate_stack(examples);
  Generator rng(seed);
  for (const auto& t : o_.batch_transforms) t->apply(b, num_classes_, rng);
  return b;
}

namespace {

Schema image_reader_schema(const std::string& name, const std::string& doc) {
  Schema s("reader", name, doc);
  s.key<int64_t>("channels", 3, "1: decode as gray, 3: as RGB (alpha is dropped)")
      .range(1, 3)
      .key<std::string>("on_error", "fail",
                        "an undecodable image: fail (error naming the path) or skip (warn once, "
                        "use the next good sample)")
      .choices({"fail", "skip"})
      .any("transforms", "per-image transforms, in order (see `oar list transforms`)")
      .any("batch_transforms", "batch transforms after collation: mixup, cutmix")
      .key<int64_t>("num_classes", 0, "classes of label_soft (0: from the data)")
      .min(0);
  return add_loader_keys(s);
}

std::shared_ptr<Dataset> make_image_dataset(ImageSource src, const Config& c,
                                            const std::string& k) {
  if (c.get<int64_t>(k + ".channels") == 2)
    throw c.error(k + ".channels", "2 channels are not supported", "1 or 3");
  ImageDatasetOptions o;
  o.channels = static_cast<int>(c.get<int64_t>(k + ".channels"));
  o.skip_errors = c.get<std::string>(k + ".on_error") == "skip";
  o.transforms = make_transforms(c, k + ".transforms");
  o.batch_transforms = make_batch_transforms(c, k + ".batch_transforms");
  o.num_classes = c.get<int64_t>(k + ".num_classes");
  return std::make_shared<ImageDataset>(std::move(src), std::move(o));
}

}  // namespace

void register_image_readers() {
  static bool done = false;
  if (done) return;
  done = true;
  register_transforms();
  {
    Schema s = image_reader_schema("image_folder",
                                   "images in class sub-folders root/<class>/*.jpg|png|bmp|webp "
                                   "(labels: sorted folder names)");
    s.required_path("root",
                    "the folder; for prediction also an image, a folder of images or a list file");
    datasets().add(s, [](const Config& c, const std::string& k, DataContext) {
      const std::string root = c.get<std::string>(k + ".root");
      ImageSource src;
      try {
        src = resolve_image_input(root);
      } catch (const std::exception& e) {
        throw c.error(k + ".root", e.what());
      }
      return make_image_dataset(std::move(src), c, k);
    });
    set_input_key("image_folder", "root");
  }
  {
    Schema s = image_reader_schema(
        "image_list", "a list file of `relative/path label` lines (or paths alone, to predict)");
    s.required_path("list", "the list file; for prediction also an image or a folder of images")
        .path("root", "", "folder the listed paths are relative to (default: the list's folder)");
    datasets().add(s, [](const Config& c, const std::string& k, DataContext) {
      const std::string list = c.get<std::string>(k + ".list");
      const std::string root = c.get<std::string>(k + ".root", "");
      ImageSource src;
      try {
        src = fs::is_directory(list) || is_image_file(list) ? resolve_image_input(list)
                                                            : read_image_list(list, root);
      } catch (const std::exception& e) {
        throw c.error(k + ".list", e.what());
      }
      return make_image_dataset(std::move(src), c, k);
    });
    set_input_key("image_list", "list");
  }
}

}  // namespace oar::readers
