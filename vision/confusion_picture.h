#pragma once
// The confusion matrix as a picture: confusion_matrix.png beside confusion_matrix.json.
// Rendered here rather than in metrics/, which knows the engine only (DESIGN.md).
#include <string>
#include <vector>

#include "metrics/classification.h"

namespace oar::vision {

// A heat map of `counts` (row-major [n, n], rows: true class, columns: predicted), each row
// coloured by its share of the row (so recall sits on the diagonal); class names along the
// axes when there are at most 60 classes, counts in the cells when at most 20. PNG bytes.
std::string render_confusion_png(const std::vector<double>& counts, int64_t n,
                                 const std::vector<std::string>& names);

class ConfusionMatrixWithPicture : public metrics::ConfusionMatrix {
 public:
  ConfusionMatrixWithPicture(int64_t num_classes, std::vector<std::string> class_names)
      : metrics::ConfusionMatrix(num_classes, class_names), names_(std::move(class_names)) {}
  // confusion_matrix.json (the base) and confusion_matrix.png, both written atomically.
  void write_artifacts(const std::string& dir) const override;

 private:
  std::vector<std::string> names_;
};

}  // namespace oar::vision
