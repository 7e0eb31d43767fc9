#pragma once
// What a tensor derived from others (a concatenation, a packed or reordered copy) was made from:
// each source's storage, view (offset, shape, strides) and storage version. The derived tensor
// stays valid while every source is the same view of the same live storage, unwritten since
// (in-place writers such as optimizer steps bump Storage::version). Take the stamp before
// deriving, so that a write during the derivation leaves the result stale rather than current.
#include <memory>
#include <vector>

#include "engine/tensor/tensor.h"

namespace oar {

class SourceStamp {
 public:
  SourceStamp() = default;
  explicit SourceStamp(const std::vector<Tensor>& sources);
  // Every source the same view of the same storage, at the stamped version.
  bool current(const std::vector<Tensor>& sources) const;
  // Every stamped storage still alive (an expired one can never be current again).
  bool alive() const;

 private:
  struct Source {
    std::weak_ptr<Storage> storage;
    int64_t offset = 0;
    Shape shape, strides;
    uint64_t version = 0;
  };
  std::vector<Source> sources_;
};

}  // namespace oar
