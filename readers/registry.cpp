#include "readers/registry.h"

#include <map>
#include <thread>

#include "readers/features/feature_dataset.h"
#include "readers/idx.h"
#include "readers/image/image_dataset.h"
#include "readers/video/video_dataset.h"

namespace oar::readers {

Registry<Dataset, DataContext>& datasets() {
  static auto* r = new Registry<Dataset, DataContext>("reader");
  return *r;
}

Schema& add_loader_keys(Schema& s) {
  return s.key<int64_t>("batch_size", 32, "samples per batch")
      .min(1)
      .optional<bool>("shuffle", "shuffle each epoch (default: on in train, off otherwise)")
      .key<bool>("drop_last", false, "drop the last incomplete batch")
      .key<int64_t>("num_workers", 2, "loader threads (0: load on the training thread)")
      .range(0, 256)
      .key<int64_t>("prefetch", 4, "batches each worker loads ahead")
      .range(1, 1024)
      .key<int64_t>("limit", 0, "use only the first N samples (0: all)")
      .min(0)
      .key<int64_t>("bucket", 0,
                    "length bucketing when shuffling: sort by length within windows of N batches, "
                    "then shuffle the batches (0: off; text readers)")
      .min(0);
}

void register_components() {
  static bool done = false;
  if (done) return;
  done = true;
  Schema s("reader", "idx", "IDX image files (MNIST, Fashion-MNIST), plain or gzipped");
  s.required_path("images", "IDX file of [N, H, W] uint8 images")
      .path("labels", "", "IDX file of [N] uint8 labels (optional for prediction)")
      .key<double>("mean", 0.0, "normalisation mean on the [0, 1] scale")
      .key<double>("std", 1.0, "normalisation std on the [0, 1] scale")
      .min(1e-6);
  add_loader_keys(s);
  set_input_key("idx", "images");
  datasets().add(s, [](const Config& c, const std::string& k, DataContext) {
    return std::make_shared<IdxImageDataset>(c.get<std::string>(k + ".images"),
                                             c.get<std::string>(k + ".labels", ""),
                                             static_cast<float>(c.get<double>(k + ".mean")),
                                             static_cast<float>(c.get<double>(k + ".std")));
  });
  register_image_readers();
  register_feature_readers();
  register_video_readers();
}

namespace {
std::map<std::string, std::string>& input_keys() {
  static auto* m = new std::map<std::string, std::string>();
  return *m;
}
}  // namespace

void set_input_key(const std::string& reader, const std::string& key) {
  input_keys()[reader] = key;
}

std::string input_key(const std::string& reader) {
  auto it = input_keys().find(reader);
  return it == input_keys().end() ? "" : it->second;
}

bool has_mode(const Config& config, const std::string& mode) {
  return config.has("data." + mode);
}

std::shared_ptr<DataLoader> make_loader(const Config& config, const std::string& mode,
                                        uint64_t seed, int rank, int world_size) {
  if (!has_mode(config, mode))
    throw config.error("data." + mode, "missing section: no data for '" + mode + "'",
                       "add data." + mode + " with the files to read");
  Config c = config.mode("data", mode);
  DataContext ctx{mode};
  std::shared_ptr<Dataset> ds = datasets().create_from(c, "data", ctx);
  LoaderOptions o;
  o.batch_size = c.get<int64_t>("data.batch_size");
  o.shuffle = c.get<bool>("data.shuffle", mode == "train");
  o.drop_last = c.get<bool>("data.drop_last");
  o.num_workers = static_cast<int>(c.get<int64_t>("data.num_workers"));
  o.prefetch = static_cast<int>(c.get<int64_t>("data.prefetch"));
  o.limit = c.get<int64_t>("data.limit");
  o.bucket = c.get<int64_t>("data.bucket", 0);
  o.seed = seed;
  o.rank = rank;
  o.world_size = world_size;
  return std::make_shared<DataLoader>(ds, o);
}

}  // namespace oar::readers
