#pragma once
// The dataset registry and the loader keys every `data` section shares.
//
//   data:
//     name: idx              # which dataset
//     batch_size: 128        # loader keys (below), shared by all modes ...
//     train: {images: ..., shuffle: true}   # ... and overridden per mode
//     valid: {images: ...}
#include <memory>
#include <string>

#include "engine/config/config.h"
#include "engine/registry/registry.h"
#include "readers/dataset.h"

namespace oar::readers {

struct DataContext {
  std::string mode;  // train, valid, test, infer
};

Registry<Dataset, DataContext>& datasets();

// Adds batch_size, shuffle, drop_last, num_workers, prefetch, limit to a dataset schema.
Schema& add_loader_keys(Schema& schema);

// Registers the readers of this library (idx, ...). Idempotent.
void register_components();

// Builds the loader for one mode from the config's effective `data` section for that mode.
// Throws ConfigError when the mode has no data (naming data.<mode>).
std::shared_ptr<DataLoader> make_loader(const Config& config, const std::string& mode,
                                        uint64_t seed, int rank = 0, int world_size = 1);

// The key of a reader's schema that `oar predict --input` fills ("" when it takes none).
void set_input_key(const std::string& reader, const std::string& key);
std::string input_key(const std::string& reader);

// True when the config has a data.<mode> section.
bool has_mode(const Config& config, const std::string& mode);

}  // namespace oar::readers
