#include "vision/register.h"

#include <fstream>

#include "engine/registry/registry.h"
#include "engine/train/components.h"
#include "metrics/registry.h"
#include "readers/registry.h"
#include "vision/models/mobilenet_v1.h"
#include "vision/models/mobilenet_v2.h"
#include "vision/models/mobilenet_v3.h"
#include "vision/models/resnet.h"
#include "vision/models/simple_cnn.h"
#include "vision/models/vgg.h"
#include "vision/tasks/image_classification.h"

namespace oar::vision {

namespace {

// The keys every classifier of the zoo takes.
Schema classifier_schema(const std::string& name, const std::string& doc, int64_t num_classes,
                         double dropout) {
  Schema s("model", name, doc);
  s.key<int64_t>("in_channels", 3, "input channels").range(1, 4096)
      .key<int64_t>("num_classes", num_classes, "output classes").range(1, 1000000)
      .key<double>("dropout", dropout, "dropout before the classifier").range(0, 0.99);
  return s;
}

void register_resnets() {
  for (const char* n : {"resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
                        "resnet18_vd", "resnet34_vd", "resnet50_vd", "resnet101_vd",
                        "resnet152_vd", "resnet20_cifar", "resnet32_cifar", "resnet44_cifar",
                        "resnet56_cifar", "resnet110_cifar"}) {
    const ResNetOptions v = resnet_variant(n);
    const std::string doc =
        v.cifar ? "CIFAR ResNet (He et al. 2015, sec. 4.2): 16/32/64 channels, zero-padding "
                  "shortcuts"
        : v.vd  ? "ResNet-vd (PaddleClas): deep 3x3 stem, avg-pool downsampling shortcuts"
                : "ResNet v1.5 (torchvision layout and state names)";
    Schema s = classifier_schema(n, doc, v.cifar ? 10 : 1000, 0.0);
    if (!v.cifar)
      s.key<bool>("small_input", false, "3x3 stride-1 stem without max pool, for 28-32 px images");
    s.key<bool>("zero_init_residual", false, "zero the last BN gamma of every residual branch");
    models().add(s, [v](const Config& c, const std::string& k, ModelContext ctx) {
      ResNetOptions o = v;
      o.in_channels = c.get<int64_t>(k + ".in_channels");
      o.num_classes = c.get<int64_t>(k + ".num_classes");
      o.dropout = c.get<double>(k + ".dropout");
      if (!o.cifar) o.small_input = c.get<bool>(k + ".small_input");
      o.zero_init_residual = c.get<bool>(k + ".zero_init_residual");
      return std::make_shared<ResNet>(o, ctx.init_generator);
    });
  }
}

void register_mobilenets() {
  auto mobile_keys = [](Schema s) {
    s.key<double>("width_mult", 1.0, "width multiplier of every layer").range(0.05, 8)
        .key<bool>("small_input", false,
                   "stride 1 in the stem and the first downsampling block, for 28-32 px images");
    return s;
  };
  {
    Schema s = mobile_keys(classifier_schema(
        "mobilenet_v1", "MobileNetV1 (Howard et al. 2017): depthwise-separable convolutions",
        1000, 0.0));
    models().add(s, [](const Config& c, const std::string& k, ModelContext ctx) {
      MobileNetV1Options o;
      o.in_channels = c.get<int64_t>(k + ".in_channels");
      o.num_classes = c.get<int64_t>(k + ".num_classes");
      o.dropout = c.get<double>(k + ".dropout");
      o.width_mult = c.get<double>(k + ".width_mult");
      o.small_input = c.get<bool>(k + ".small_input");
      return std::make_shared<MobileNetV1>(o, ctx.init_generator);
    });
  }
  {
    Schema s = mobile_keys(classifier_schema(
        "mobilenet_v2", "MobileNetV2 (Sandler et al. 2018; torchvision layout and state names)",
        1000, 0.2));
    models().add(s, [](const Config& c, const std::string& k, ModelContext ctx) {
      MobileNetV2Options o;
      o.in_channels = c.get<int64_t>(k + ".in_channels");
      o.num_classes = c.get<int64_t>(k + ".num_classes");
      o.dropout = c.get<double>(k + ".dropout");
      o.width_mult = c.get<double>(k + ".width_mult");
      o.small_input = c.get<bool>(k + ".small_input");
      return std::make_shared<MobileNetV2>(o, ctx.init_generator);
    });
  }
  for (const bool large : {false, true}) {
    const std::string n = large ? "mobilenet_v3_large" : "mobilenet_v3_small";
    Schema s = mobile_keys(classifier_schema(
        n, "MobileNetV3 (Howard et al. 2019; torchvision layout and state names)", 1000, 0.2));
    models().add(s, [large](const Config& c, const std::string& k, ModelContext ctx) {
      MobileNetV3Options o;
      o.large = large;
      o.in_channels = c.get<int64_t>(k + ".in_channels");
      o.num_classes = c.get<int64_t>(k + ".num_classes");
      o.dropout = c.get<double>(k + ".dropout");
      o.width_mult = c.get<double>(k + ".width_mult");
      o.small_input = c.get<bool>(k + ".small_input");
      return std::make_shared<MobileNetV3>(o, ctx.init_generator);
    });
  }
}

void register_vggs() {
  for (const int64_t depth : {11, 13, 16, 19})
    for (const bool bn : {false, true}) {
      const std::string n = "vgg" + std::to_string(depth) + (bn ? "_bn" : "");
      Schema s = classifier_schema(
          n, "VGG (Simonyan & Zisserman 2014; torchvision layout and state names), inputs >= 32 px",
          1000, 0.5);
      models().add(s, [depth, bn](const Config& c, const std::string& k, ModelContext ctx) {
        VggOptions o;
        o.depth = depth;
        o.batch_norm = bn;
        o.in_channels = c.get<int64_t>(k + ".in_channels");
        o.num_classes = c.get<int64_t>(k + ".num_classes");
        o.dropout = c.get<double>(k + ".dropout");
        return std::make_shared<Vgg>(o, ctx.init_generator);
      });
    }
}

}  // namespace

void register_components() {
  static bool done = false;
  if (done) return;
  done = true;
  readers::register_components();
  metrics::register_components();  // the task's metrics, listed by `oar list metrics`
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
  register_resnets();
  register_mobilenets();
  register_vggs();
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
      const std::string file = c.get<std::string>(k + ".class_names_file", "");
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
