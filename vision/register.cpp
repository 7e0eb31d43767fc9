#include "vision/register.h"

#include <fstream>

#include "engine/train/components.h"
#include "readers/registry.h"
#include "vision/models/simple_cnn.h"
#include "vision/tasks/image_classification.h"

namespace oar::vision {

void register_components() {
  static bool done = false;
  if (done) return;
  done = true;
  readers::register_components();
  {
    Schema s("model", "simple_cnn",
             "small VGG-style CNN: stages of 2x(conv3x3-BN-ReLU) + max pool, global pool, linear");
    s.key<int64_t>("in_channels", 1, "input channels").range(1, 4096)
        .key<int64_t>("num_classes", 10, "output classes").range(1, 1000000)
        .key<int64_t>("width", 32, "channels of the first stage (doubling per stage)").range(1, 4096)
        .key<int64_t>("stages", 2, "number of stages").range(1, 8)
        .key<double>("dropout", 0.1, "dropout before the classifier").range(0, 0.99);
    models().add(s, [](const Config& c, const std::string& k, ModelContext ctx) {
      SimpleCnnOptions o;
      o.in_channels = c.get<int64_t>(k + ".in_channels");
      o.num_classes = c.get<int64_t>(k + ".num_classes");
      o.width = c.get<int64_t>(k + ".width");
      o.stages = c.get<int64_t>(k + ".stages");
      o.dropout = c.get<double>(k + ".dropout");
      return std::make_shared<SimpleCnn>(o, ctx.init_generator);
    });
  }
  {
    Schema s("task", "image_classification",
             "softmax classification of batch[\"image\"] against batch[\"label\"]");
    s.key<int64_t>("num_classes", 10, "classes").range(1, 1000000)
        .key<double>("label_smoothing", 0.0, "label smoothing of the cross entropy").range(0, 1)
        .key<int64_t>("topk", 5, "labels per prediction record").range(1, 1000)
        .optional<std::vector<std::string>>("class_names", "names of the classes, in label order")
        .path("class_names_file", "", "a file with one class name per line (instead of class_names)");
    tasks().add(s, [](const Config& c, const std::string& k, std::shared_ptr<nn::Module> model) {
      ImageClassificationOptions o;
      o.num_classes = c.get<int64_t>(k + ".num_classes");
      o.label_smoothing = c.get<double>(k + ".label_smoothing");
      o.topk = c.get<int64_t>(k + ".topk");
      o.class_names = c.get<std::vector<std::string>>(k + ".class_names", {});
      const std::string file = c.get<std::string>(k + ".class_names_file");
      if (o.class_names.empty() && !file.empty()) {
        std::ifstream in(file);
        if (!in) throw c.error(k + ".class_names_file", "cannot read " + file);
        for (std::string line; std::getline(in, line);)
          if (!line.empty()) o.class_names.push_back(line);
      }
      if (!o.class_names.empty() && static_cast<int64_t>(o.class_names.size()) != o.num_classes)
        throw c.error(k + ".class_names",
                      std::to_string(o.class_names.size()) + " class names for " +
                          std::to_string(o.num_classes) + " classes",
                      "one name per class");
      return std::make_shared<ImageClassificationTask>(std::move(model), o);
    });
  }
}

}  // namespace oar::vision
