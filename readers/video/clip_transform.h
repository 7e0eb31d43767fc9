#pragma once
// Clip transforms: the image transforms' idea for a clip, where one random draw (crop window,
// scale, flip) applies to every frame, so motion between frames is kept. Configured as an
// ordered list under data.<mode>.transforms, each item validated by its schema (registry kind
// "video_transform"; `oar config doc group_scale` etc.):
//
//   transforms:
//     - {name: group_scale, short_size: 256}
//     - {name: group_multi_scale_crop, size: 224}
//     - {name: group_random_flip}
//     - {name: group_normalize, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]}
//
// A sample holds one or more views (temporal clips x spatial crops); group_three_crop and
// group_ten_crop multiply the views, every other transform maps each view, drawing once per view.
#include <memory>
#include <string>
#include <vector>

#include "engine/config/config.h"
#include "engine/core/generator.h"
#include "engine/registry/registry.h"
#include "readers/image/image.h"

namespace oar::readers {

using Clip = std::vector<Image>;  // frames of one view, HWC float RGB (0..1 until normalized)

class ClipTransform {
 public:
  virtual ~ClipTransform() = default;
  virtual void apply(std::vector<Clip>& views, Generator& rng) const = 0;
};

Registry<ClipTransform>& clip_transforms();
using ClipTransformList = std::vector<std::shared_ptr<const ClipTransform>>;

// Builds the list at `key` (absent or null: empty); errors are ConfigErrors at the item.
ClipTransformList make_clip_transforms(const Config& config, const std::string& key);
void apply_all(const ClipTransformList& list, std::vector<Clip>& views, Generator& rng);

// One view: [T, C, H, W] f32; several: [V, T, C, H, W]. Every frame must have one size (the
// error names both sizes: add a crop or a fixed-size scale).
Tensor views_to_tensor(const std::vector<Clip>& views);

// Bilinear resize of one frame to exactly h x w (OpenCV).
void resize_frame(Image& img, int64_t h, int64_t w);

// Registers the group_* transforms. Idempotent.
void register_clip_transforms();

}  // namespace oar::readers
