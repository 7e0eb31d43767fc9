#pragma once
// Per-frame video features on disk, one file per video (docs/video/features.md): a safetensors
// file whose tensors are the features by name (`rgb` [T, 1024], `audio` [T, 128], any names and
// widths, one T for all), stored as uint8 (YouTube-8M's quantization) or f32, and whose
// metadata holds the format tag, the video id, the labels and the quantization range.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor/tensor.h"

namespace oar::readers {

inline constexpr const char* kFeatureFormat = "oar.video_features";
inline constexpr int kFeatureFormatVersion = 1;

// YouTube-8M's (de)quantization (utils.Dequantize): scalar = (max - min) / 255,
// bias = (max - min) / 512 + min; value = q * scalar + bias. quantize() rounds to the nearest
// level and clamps to 0..255, so values in [min, max] come back within scalar / 2.
struct Quantization {
  double min = -2.0;
  double max = 2.0;
  double scalar() const { return (max - min) / 255.0; }
  double bias() const { return (max - min) / 512.0 + min; }
};
Tensor quantize(const Tensor& values, const Quantization& q);       // f32 -> u8, same shape
Tensor dequantize(const Tensor& quantized, const Quantization& q);  // u8 -> f32

struct FeatureRecord {
  std::string video_id;
  std::vector<int64_t> labels;                           // class indices (multi-label)
  std::vector<std::pair<std::string, Tensor>> features;  // name -> [T, D], f32 or u8
  bool quantized = false;                                // features are u8 levels
  Quantization range;                                    // meaningful when quantized
  // The named feature as f32 [T, D] (dequantized when stored as u8); throws naming `origin`
  // when absent.
  Tensor get(const std::string& name, const std::string& origin = "") const;
  int64_t frames() const;  // T (0 without features)
};

struct FeatureWriteOptions {
  bool quantize = true;  // store u8 levels; false stores f32
  Quantization range;
};

// Writes `record` (features given as f32 [T, D], one T for all) atomically. With quantize the
// features are quantized with options.range; record.quantized/range are ignored.
void write_feature_file(const std::string& path, const FeatureRecord& record,
                        const FeatureWriteOptions& options = {});

// Reads and validates a feature file; every error names the path (truncated or corrupt bytes,
// missing format tag, features of different lengths, bad labels).
FeatureRecord read_feature_file(const std::string& path);

}  // namespace oar::readers
