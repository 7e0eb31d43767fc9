#pragma once
// Image transforms, configured as an ordered YAML list and applied per sample with the sample's
// generator (seeded by the loader from (seed, epoch, index)), so runs repeat exactly:
//
//   data:
//     transforms:                       # shared by every mode ...
//       - {name: resize, size: 256}
//       - {name: center_crop, size: 224}
//       - {name: normalize, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]}
//     train:
//       transforms: [...]               # ... or per mode (a mode's list replaces the shared one)
//       batch_transforms: [{name: mixup, alpha: 0.2}]
//
// Each item is validated by its own schema (registry kind "transform"; `oar list transforms`).
// Batch transforms (mixup, cutmix) run after collation and add batch["label_soft"] [N, C].
#include <memory>
#include <string>
#include <vector>

#include "engine/config/config.h"
#include "engine/core/generator.h"
#include "engine/registry/registry.h"
#include "engine/train/batch.h"
#include "readers/image/image.h"

namespace oar::readers {

class Transform {
 public:
  virtual ~Transform() = default;
  // Changes `img` in place (geometry and values); draws only from `rng`.
  virtual void apply(Image& img, Generator& rng) const = 0;
};

// Works on a collated batch: batch["image"] [N, C, H, W] f32 and batch["label"] [N] i64;
// writes batch["label_soft"] [N, num_classes] f32 (rows sum to 1) and mixes the images.
class BatchTransform {
 public:
  virtual ~BatchTransform() = default;
  virtual void apply(Batch& batch, int64_t num_classes, Generator& rng) const = 0;
};

Registry<Transform>& transforms();
Registry<BatchTransform>& batch_transforms();  // also kind "transform" in `oar list`

using TransformList = std::vector<std::shared_ptr<const Transform>>;
using BatchTransformList = std::vector<std::shared_ptr<const BatchTransform>>;

// Builds the list at `key` (absent or null: empty). Each item must be a map with `name`; errors
// (unknown name, bad key, to_chw not last) are ConfigErrors located at the item.
TransformList make_transforms(const Config& config, const std::string& key);
BatchTransformList make_batch_transforms(const Config& config, const std::string& key);

void apply_all(const TransformList& list, Image& img, Generator& rng);

// Registers every transform above. Idempotent.
void register_transforms();

// Per-family registration (geometric.cpp, photometric.cpp, mix.cpp).
void register_geometric_transforms();
void register_photometric_transforms();
void register_mix_transforms();

// A size key that is either one integer or [height, width]; `single` is set for one integer.
struct SizeSpec {
  int64_t height = 0, width = 0;
  bool single = false;
};
SizeSpec read_size(const Config& config, const std::string& key);

// Beta(a, a) draw from the generator (Marsaglia-Tsang gamma).
double sample_beta(double a, double b, Generator& rng);

}  // namespace oar::readers
