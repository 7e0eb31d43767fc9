#include "video/register.h"

#include <memory>
#include <string>
#include <vector>

#include "engine/core/error.h"
#include "engine/registry/registry.h"
#include "engine/train/components.h"
#include "video/models/nonlocal.h"
#include "video/models/sequence_register.h"
#include "video/models/stnet.h"
#include "video/models/tsm.h"
#include "video/models/tsn.h"
#include "video/models/weights.h"

namespace oar::video {

namespace {

// The keys every frame-based classifier takes: the ResNet trunk, classes, 2D weights.
Schema frame_model_schema(const std::string& name, const std::string& doc, double dropout) {
  Schema s("model", name, doc);
  s.key<int64_t>("num_classes", 400, "output classes (Kinetics-400)")
      .range(1, 1000000)
      .key<int64_t>("depth", 50, "ResNet depth: 50, 101 or 152")
      .range(50, 152)
      .optional<std::vector<int64_t>>("blocks",
                                      "bottlenecks per stage (4 numbers), instead of depth's")
      .key<int64_t>("width", 64, "channels of the stem and the first stage")
      .range(1, 4096)
      .key<double>("dropout", dropout, "dropout before the classifier")
      .range(0, 0.99)
      .path("pretrained", "",
            "ImageNet ResNet weights (safetensors, torchvision names) for the trunk; "
            "StNet's conv1 is averaged over the super-image, I3D's kernels inflated");
  return s;
}

VideoResNetOptions trunk(const Config& c, const std::string& k) {
  VideoResNetOptions o;
  o.depth = c.get<int64_t>(k + ".depth");
  o.blocks = c.get<std::vector<int64_t>>(k + ".blocks", {});
  if (o.blocks.empty()) {
    if (o.depth != 50 && o.depth != 101 && o.depth != 152)
      throw c.error(k + ".depth", "no ResNet of depth " + std::to_string(o.depth),
                    "50, 101 or 152");
  } else if (o.blocks.size() != 4) {
    throw c.error(k + ".blocks", std::to_string(o.blocks.size()) + " stages given",
                  "4 positive numbers");
  } else {
    for (const int64_t b : o.blocks)
      if (b < 1) throw c.error(k + ".blocks", "a stage without blocks", "4 positive numbers");
  }
  o.width = c.get<int64_t>(k + ".width");
  return o;
}

template <typename M>
std::shared_ptr<nn::Module> with_weights(std::shared_ptr<M> m, const Config& c,
                                         const std::string& k) {
  const std::string path = c.get<std::string>(k + ".pretrained", "");
  if (!path.empty()) {
    try {
      load_2d_resnet_file(*m, path);
    } catch (const Error& e) {
      throw c.error(k + ".pretrained", e.what());
    }
  }
  return m;
}

}  // namespace

void register_components() {
  static bool done = false;
  if (done) return;
  done = true;
  register_sequence_models();
  {
    Schema s = frame_model_schema(
        "tsn", "TSN (Wang et al. 2016): 2D ResNet per segment, average consensus, fc", 0.0);
    models().add(s, [](const Config& c, const std::string& k, ModelContext ctx) {
      TsnOptions o;
      o.backbone = trunk(c, k);
      o.num_classes = c.get<int64_t>(k + ".num_classes");
      o.dropout = c.get<double>(k + ".dropout");
      return with_weights(std::make_shared<Tsn>(o, ctx.init_generator), c, k);
    });
  }
  {
    Schema s = frame_model_schema(
        "tsm",
        "TSM (Lin et al. 2019): TSN with 1/fold_div of the channels shifted each way in time at "
        "every residual branch",
        0.5);
    s.key<int64_t>("fold_div", 8, "1/fold_div of the channels shift each way").range(2, 1024);
    models().add(s, [](const Config& c, const std::string& k, ModelContext ctx) {
      TsmOptions o;
      o.backbone = trunk(c, k);
      o.backbone.shift_fold_div = c.get<int64_t>(k + ".fold_div");
      o.num_classes = c.get<int64_t>(k + ".num_classes");
      o.dropout = c.get<double>(k + ".dropout");
      return with_weights(std::make_shared<Tsm>(o, ctx.init_generator), c, k);
    });
  }
  {
    Schema s = frame_model_schema(
        "stnet",
        "StNet (He et al. 2019): seglen-frame super-images, temporal 3D conv blocks after res3 "
        "and res4, temporal Xception, temporal max pool",
        0.0);
    s.key<int64_t>("seglen", 5, "consecutive frames stacked per segment").range(1, 64);
    models().add(s, [](const Config& c, const std::string& k, ModelContext ctx) {
      if (c.get<double>(k + ".dropout") != 0.0)
        throw c.error(k + ".dropout", "StNet has no dropout", "0");
      StNetOptions o;
      o.backbone = trunk(c, k);
      o.seglen = c.get<int64_t>(k + ".seglen");
      o.num_classes = c.get<int64_t>(k + ".num_classes");
      return with_weights(std::make_shared<StNet>(o, ctx.init_generator), c, k);
    });
  }
  {
    Schema s = frame_model_schema(
        "nonlocal",
        "Non-local network (Wang et al. 2018): C2D or I3D ResNet with embedded-Gaussian "
        "non-local blocks in res3 and res4",
        0.5);
    s.key<std::string>("arch", "c2d", "backbone: c2d (2D kernels) or i3d (inflated 3D)")
        .choices({"c2d", "i3d"})
        .key<int64_t>("layer_mod", 2, "a non-local block after every layer_mod-th block")
        .range(1, 1000)
        .key<bool>("res3_nonlocal", true, "non-local blocks in res3 (layer2)")
        .key<bool>("res4_nonlocal", true, "non-local blocks in res4 (layer3)");
    models().add(s, [](const Config& c, const std::string& k, ModelContext ctx) {
      NonLocalOptions o;
      o.i3d = c.get<std::string>(k + ".arch") == "i3d";
      o.backbone = trunk(c, k);
      o.num_classes = c.get<int64_t>(k + ".num_classes");
      o.dropout = c.get<double>(k + ".dropout");
      o.layer_mod = c.get<int64_t>(k + ".layer_mod");
      o.res3_nonlocal = c.get<bool>(k + ".res3_nonlocal");
      o.res4_nonlocal = c.get<bool>(k + ".res4_nonlocal");
      return with_weights(std::make_shared<NonLocalNet>(o, ctx.init_generator), c, k);
    });
  }
}

}  // namespace oar::video
