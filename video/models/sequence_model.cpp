#include "video/models/sequence_model.h"

#include <ostream>

#include "engine/core/error.h"
#include "engine/ops.h"
#include "engine/train/batch.h"

namespace oar::video {

SequenceModel::SequenceModel(const std::string& model, SequenceModelOptions options)
    : options_(std::move(options)) {
  const auto& o = options_;
  OAR_CHECK(!o.feature_names.empty(), model, ": feature_names is empty");
  OAR_CHECK(o.feature_names.size() == o.feature_dims.size(), model, ": ", o.feature_names.size(),
            " feature_names but ", o.feature_dims.size(), " feature_dims");
  for (size_t i = 0; i < o.feature_dims.size(); ++i)
    OAR_CHECK(o.feature_dims[i] >= 1, model, ": feature_dims[", i, "] = ", o.feature_dims[i],
              " must be positive");
  OAR_CHECK(o.num_classes >= 1, model, ": num_classes must be positive");
  OAR_CHECK(o.drop_rate >= 0 && o.drop_rate < 1, model, ": drop_rate ", o.drop_rate,
            " is outside [0, 1)");
}

Tensor SequenceModel::forward(const std::vector<Tensor>& features, const Tensor& lengths) {
  const auto& names = options_.feature_names;
  OAR_CHECK(features.size() == names.size(), name(), ": expected ", names.size(),
            " feature tensors (", names.size() == 2 ? names[0] + ", " + names[1] : names[0],
            names.size() > 2 ? ", ..." : "", "), got ", features.size());
  SequenceBatch b;
  for (size_t i = 0; i < features.size(); ++i) {
    const Tensor& f = features[i];
    OAR_CHECK(f.defined(), name(), ": feature '", names[i], "' is undefined");
    OAR_CHECK(f.dim() == 3 && f.size(2) == options_.feature_dims[i], name(), ": feature '",
              names[i], "' must be [N, T, ", options_.feature_dims[i], "], got ",
              shape_str(f.shape()));
    OAR_CHECK(is_floating(f.dtype()), name(), ": feature '", names[i], "' must be floating, got ",
              dtype_name(f.dtype()));
    if (i == 0) {
      b.batch = f.size(0);
      b.frames = f.size(1);
    }
    OAR_CHECK(f.size(0) == b.batch && f.size(1) == b.frames, name(), ": feature '", names[i],
              "' has shape ", shape_str(f.shape()), " but '", names[0], "' has [N, T] = [", b.batch,
              ", ", b.frames, "]");
    OAR_CHECK(f.device() == features[0].device(), name(), ": feature '", names[i],
              "' is on another device than '", names[0], "'");
  }
  OAR_CHECK(b.batch >= 1 && b.frames >= 1, name(), ": empty batch (N = ", b.batch,
            ", T = ", b.frames, ")");
  OAR_CHECK(lengths.defined() && lengths.dim() == 1 && lengths.size(0) == b.batch &&
                !is_floating(lengths.dtype()) && lengths.dtype() != DType::boolean,
            name(), ": lengths must be an integer tensor of shape [", b.batch, "], got ",
            lengths.defined()
                ? dtype_name(lengths.dtype()) + std::string(" ") + shape_str(lengths.shape())
                : std::string("undefined"));
  b.host_lengths = lengths.to(Device::cpu()).to(DType::i64).contiguous().to_vector<int64_t>();
  for (int64_t n = 0; n < b.batch; ++n)
    OAR_CHECK(b.host_lengths[n] >= 1 && b.host_lengths[n] <= b.frames, name(), ": lengths[", n,
              "] = ", b.host_lengths[n], " is outside [1, ", b.frames, "] (T = ", b.frames, ")");

  const Device dev = features[0].device();
  b.lengths = tensor<int64_t>(b.host_lengths, {b.batch}).to(dev);
  b.valid = lt(arange(b.frames).to(dev).reshape({1, b.frames}), b.lengths.reshape({b.batch, 1}));
  const Tensor padding = logical_not(b.valid).reshape({b.batch, b.frames, 1});
  for (const Tensor& f : features) b.features.push_back(masked_fill(f, padding, 0.0));
  return classify(b);
}

Tensor SequenceModel::forward(const Batch& batch, const std::string& length_field) {
  std::vector<Tensor> features;
  for (const std::string& f : options_.feature_names) features.push_back(batch[f]);
  return forward(features, batch[length_field]);
}

Tensor SequenceModel::forward(const Tensor& x) {
  OAR_CHECK(options_.feature_names.size() == 1, name(), " reads ", options_.feature_names.size(),
            " modalities with their lengths: call forward(features, lengths)");
  OAR_CHECK(x.defined() && x.dim() == 3, name(), ": input must be [N, T, D], got ",
            x.defined() ? shape_str(x.shape()) : std::string("undefined"));
  return forward(std::vector<Tensor>{x},
                 full({x.size(0)}, static_cast<double>(x.size(1)), DType::i64, x.device()));
}

void SequenceModel::describe(std::ostream& os) const {
  os << name() << "(";
  for (size_t i = 0; i < options_.feature_names.size(); ++i)
    os << (i ? ", " : "") << options_.feature_names[i] << ": " << options_.feature_dims[i];
  os << "; classes " << options_.num_classes << ", drop_rate " << options_.drop_rate << ")";
}

Tensor masked_time_softmax(const Tensor& scores, const Tensor& valid) {
  // A large finite value rather than -inf keeps the backward free of inf - inf.
  const Tensor padding = logical_not(valid).reshape({valid.size(0), valid.size(1), 1});
  return softmax(masked_fill(scores, padding, -1e30), 1);
}

}  // namespace oar::video
