#include "engine/tensor/source_stamp.h"

namespace oar {

SourceStamp::SourceStamp(const std::vector<Tensor>& sources) {
  sources_.reserve(sources.size());
  for (const Tensor& t : sources)
    sources_.push_back(
        Source{t.impl()->storage, t.offset(), t.shape(), t.strides(), t.impl()->storage->version});
}

bool SourceStamp::current(const std::vector<Tensor>& sources) const {
  if (sources.size() != sources_.size()) return false;
  for (size_t i = 0; i < sources.size(); ++i) {
    const Source& s = sources_[i];
    const Tensor& t = sources[i];
    const std::shared_ptr<Storage>& st = t.impl()->storage;
    if (s.storage.lock() != st || s.version != st->version || s.offset != t.offset() ||
        s.shape != t.shape() || s.strides != t.strides())
      return false;
  }
  return true;
}

bool SourceStamp::alive() const {
  for (const Source& s : sources_)
    if (s.storage.expired()) return false;
  return true;
}

}  // namespace oar
