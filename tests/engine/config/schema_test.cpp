#include "engine/config/schema.h"

#include <gtest/gtest.h>

#include <fstream>

namespace fs = std::filesystem;
using namespace oar;

namespace {

std::string message(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

Schema cnn() {
  return Schema("model", "simple_cnn", "A small CNN")
      .key<int64_t>("num_classes", 10, "number of classes")
      .range(1, 1e6)
      .key<double>("dropout", 0.1, "dropout before the classifier")
      .range(0, 1)
      .key<std::string>("act", "relu", "activation")
      .choices({"relu", "gelu", "swish"})
      .key<bool>("bias", true, "use bias in convolutions")
      .key<std::vector<int64_t>>("channels", std::vector<int64_t>{16, 32}, "channels per stage")
      .min(1)
      .required<int64_t>("in_channels", "input channels")
      .min(1)
      .path("pretrained", "", "weights to start from")
      .map("extra", "passed to the head");
}

}  // namespace

TEST(Schema, FillsDefaultsWithOrigin) {
  Config c = Config::from_string("model:\n  in_channels: 3\n  dropout: 1\n", "m.yaml");
  validate(c, "model", cnn());
  EXPECT_EQ(c.get<int64_t>("model.num_classes"), 10);
  EXPECT_DOUBLE_EQ(c.get<double>("model.dropout"), 1.0);  // an int is a float
  EXPECT_DOUBLE_EQ(c.get<double>("model.num_classes"), 10.0);
  EXPECT_EQ(c.get<std::vector<int64_t>>("model.channels"), (std::vector<int64_t>{16, 32}));
  EXPECT_EQ(c.origin("model.num_classes").source, "default");
  EXPECT_EQ(c.origin("model.dropout").source, "file");
  EXPECT_FALSE(c.has("model.pretrained"));
  EXPECT_EQ(c.dump(true).find("  num_classes: 10  # default\n") != std::string::npos, true);
  // validating twice changes nothing
  Config again = c;
  validate(again, "model", cnn());
  EXPECT_EQ(diff(c, again), "");
}

TEST(Schema, UnknownKeyNamesTheClosestKey) {
  Config c = Config::from_string("model:\n  in_channels: 3\n  num_clases: 5\n  zzz: 1\n", "m.yaml");
  EXPECT_EQ(message([&] { validate(c, "model", cnn()); }),
            "error: m.yaml:3: model.num_clases: unknown key for model 'simple_cnn' (did you mean "
            "'num_classes'? valid keys: act, bias, channels, dropout, extra, in_channels, "
            "num_classes, pretrained)\n"
            "error: m.yaml:4: model.zzz: unknown key for model 'simple_cnn' (valid keys: act, "
            "bias, channels, dropout, extra, in_channels, num_classes, pretrained)");
  Config ok = Config::from_string("model:\n  in_channels: 3\n  name: x\n", "m.yaml");
  validate(ok, "model", cnn(), {"name"});
}

TEST(Schema, WrongTypeRangeChoicesRequired) {
  Config c = Config::from_string(
      "model:\n  num_classes: ten\n  dropout: 1.5\n  act: rellu\n  bias: maybe\n"
      "  channels: [16, 0]\n  extra: 3\n",
      "m.yaml");
  EXPECT_EQ(message([&] { validate(c, "model", cnn()); }),
            "error: m.yaml:1: model.in_channels: missing required key for model 'simple_cnn' "
            "(int: input channels)\n"
            "error: m.yaml:2: model.num_classes: expected an int, got string 'ten' (1 to 1000000)\n"
            "error: m.yaml:3: model.dropout: value 1.5 is out of range (0 to 1)\n"
            "error: m.yaml:4: model.act: 'rellu' is not allowed (did you mean 'relu'? one of: "
            "gelu, relu, swish)\n"
            "error: m.yaml:5: model.bias: expected a bool, got string 'maybe' (true or false)\n"
            "error: m.yaml:6: model.channels[1]: value 0 is out of range (>= 1)\n"
            "error: m.yaml:7: model.extra: expected a map, got int 3");
  Config lst = Config::from_string("model:\n  in_channels: 3\n  channels: 16\n", "m.yaml");
  EXPECT_EQ(message([&] { validate(lst, "model", cnn()); }),
            "error: m.yaml:3: model.channels: expected a list of int, got int 16 (>= 1)");
  Config o = Config::from_string("model:\n  in_channels: 3\n", "m.yaml", {"model.dropout=abc"});
  EXPECT_EQ(message([&] { validate(o, "model", cnn()); }),
            "error: -o: model.dropout: expected a float, got string 'abc' (0 to 1)");
  Config missing_section = Config::from_string("data: {}\n", "m.yaml");
  EXPECT_EQ(message([&] { validate(missing_section, "model", cnn()); }),
            "error: m.yaml: model.in_channels: missing required key for model 'simple_cnn' (int: "
            "input channels)");
  Config scalar_section = Config::from_string("model: 3\n", "m.yaml");
  EXPECT_EQ(message([&] { validate(scalar_section, "model", cnn()); }),
            "error: m.yaml:1: model: expected a map of model 'simple_cnn' settings (got int 3)");
}

TEST(Schema, PathsResolveRelativeToTheirFile) {
  Config c = Config::from_string("model:\n  in_channels: 3\n  pretrained: ../w/r50.safetensors\n",
                                 "/cfg/video/tsn.yaml");
  validate(c, "model", cnn());
  EXPECT_EQ(c.get<std::string>("model.pretrained"), "/cfg/w/r50.safetensors");
  EXPECT_EQ(c.origin("model.pretrained").line, 3);
  Config abs =
      Config::from_string("model: {in_channels: 3, pretrained: /x/y.bin}\n", "/cfg/a.yaml");
  validate(abs, "model", cnn());
  EXPECT_EQ(abs.get<std::string>("model.pretrained"), "/x/y.bin");
  Config over =
      Config::from_string("model: {in_channels: 3}\n", "/cfg/a.yaml", {"model.pretrained=w.bin"});
  validate(over, "model", cnn());
  EXPECT_EQ(over.get<std::string>("model.pretrained"), (fs::current_path() / "w.bin").string());
}

TEST(Schema, Doc) {
  EXPECT_EQ(
      doc(cnn()),
      "model simple_cnn: A small CNN\n\n"
      "  key          type         default     allowed                   doc\n"
      "  num_classes  int          10          1 to 1000000              number of classes\n"
      "  dropout      float        0.1         0 to 1                    dropout before the "
      "classifier\n"
      "  act          string       relu        one of relu, gelu, swish  activation\n"
      "  bias         bool         true        -                         use bias in convolutions\n"
      "  channels     list of int  [16, 32]    >= 1                      channels per stage\n"
      "  in_channels  int          (required)  >= 1                      input channels\n"
      "  pretrained   path         -           -                         weights to start from\n"
      "  extra        map          {}          -                         passed to the head\n");
}

TEST(Schema, PathsInABaseResolveRelativeToTheBase) {
  fs::path dir = fs::temp_directory_path() / ("oar_schema_" + std::to_string(::getpid()));
  fs::create_directories(dir / "_base_");
  fs::create_directories(dir / "exp");
  std::ofstream(dir / "_base_" / "model.yaml")
      << "model:\n  in_channels: 3\n  pretrained: w/r50.bin\n";
  std::ofstream(dir / "exp" / "run.yaml")
      << "_base_: ../_base_/model.yaml\nmodel:\n  dropout: 0.2\n";
  Config c = Config::load(dir / "exp" / "run.yaml");
  validate(c, "model", cnn());
  EXPECT_EQ(c.get<std::string>("model.pretrained"), (dir / "_base_" / "w" / "r50.bin").string());
  fs::remove_all(dir);
}
