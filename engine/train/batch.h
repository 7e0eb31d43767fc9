#pragma once
// What flows from readers to tasks: named tensors with a leading batch dimension, plus one JSON
// record of metadata per sample (a path, a text, an id) that predictions can echo back.
#include <map>
#include <string>
#include <vector>

#include "engine/core/error.h"
#include "engine/io/json.h"
#include "engine/tensor/tensor.h"

namespace oar {

struct Batch {
  std::map<std::string, Tensor> tensors;
  std::vector<Json> meta;
  int64_t size = 0;

  const Tensor& operator[](const std::string& key) const {
    auto it = tensors.find(key);
    if (it == tensors.end()) {
      std::string known;
      for (const auto& [k, v] : tensors) known += (known.empty() ? "" : ", ") + k;
      OAR_FAIL("batch has no field '", key, "' (fields: ", known, ")");
    }
    return it->second;
  }
  bool has(const std::string& key) const { return tensors.count(key) > 0; }
};

// A finite, re-startable stream of batches for one epoch. The order of an epoch is a function of
// (seed, epoch) only, so training can resume in the middle of an epoch by skipping batches.
class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual int64_t num_samples() const = 0;
  virtual int64_t num_batches() const = 0;
  // Starts (or restarts) an epoch, skipping its first `skip_batches` batches without loading them.
  virtual void start_epoch(int64_t epoch, int64_t skip_batches = 0) = 0;
  // The next batch of the epoch; false at its end.
  virtual bool next(Batch& out) = 0;
};

}  // namespace oar
