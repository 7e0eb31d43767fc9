#include "engine/registry/registry.h"

#include <gtest/gtest.h>

using namespace oar;

namespace {

struct Model {
  virtual ~Model() = default;
  virtual int64_t classes() const = 0;
};
struct Net : Model {
  int64_t n;
  explicit Net(int64_t n) : n(n) {}
  int64_t classes() const override { return n; }
};

Registry<Model, int>& models() {
  static Registry<Model, int> r("model");
  return r;
}

void register_models() {
  for (const char* name : {"resnet50", "simple_cnn", "tsn"}) {
    models().add(
        Schema("", name, "test model").key<int64_t>("num_classes", 10, "classes").min(1),
        [](const Config& c, const std::string& section, int extra) -> std::shared_ptr<Model> {
          return std::make_shared<Net>(c.get<int64_t>(section + ".num_classes") + extra);
        });
  }
}

std::string message(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(Registry, CreatesValidatesAndSuggests) {
  register_models();
  EXPECT_EQ(models().names(), (std::vector<std::string>{"resnet50", "simple_cnn", "tsn"}));
  Config c = Config::from_string("model:\n  name: resnet50\n  num_classes: 5\n", "r.yaml");
  EXPECT_EQ(models().create_from(c, "model", 1)->classes(), 6);
  Config d = Config::from_string("model:\n  name: tsn\n", "r.yaml");
  EXPECT_EQ(models().create("tsn", d, "model", 0)->classes(), 10);  // default filled

  Config bad = Config::from_string("model:\n  name: resnt50\n", "r.yaml");
  EXPECT_EQ(message([&] { models().create_from(bad, "model", 0); }),
            "error: r.yaml:2: model.name: unknown model 'resnt50' (did you mean 'resnet50'? known: "
            "resnet50, simple_cnn, tsn)");
  Config far = Config::from_string("model:\n  name: transformer\n", "r.yaml");
  EXPECT_EQ(
      message([&] { models().create_from(far, "model", 0); }),
      "error: r.yaml:2: model.name: unknown model 'transformer' (known: resnet50, simple_cnn, "
      "tsn)");
  Config none = Config::from_string("model:\n  num_classes: 3\n", "r.yaml");
  EXPECT_EQ(message([&] { models().create_from(none, "model", 0); }),
            "error: r.yaml:1: model.name: missing required key: which model to use (known: "
            "resnet50, simple_cnn, tsn)");
  Config typo = Config::from_string("model:\n  name: tsn\n  num_clases: 3\n", "r.yaml");
  EXPECT_EQ(message([&] { models().create_from(typo, "model", 0); }),
            "error: r.yaml:3: model.num_clases: unknown key for model 'tsn' (did you mean "
            "'num_classes'? valid keys: num_classes)");
}

TEST(Registry, GlobalCatalogue) {
  register_models();
  ASSERT_TRUE(registry::kinds().count("model"));
  EXPECT_EQ(registry::names("model"), (std::vector<std::string>{"resnet50", "simple_cnn", "tsn"}));
  EXPECT_EQ(registry::schema("model", "tsn").kind, "model");
  EXPECT_EQ(registry::find("tsn").size(), 1u);
  EXPECT_EQ(registry::find("model.tsn").size(), 1u);
  EXPECT_TRUE(registry::find("metric.tsn").empty());
  EXPECT_EQ(message([] { registry::schema("model", "simple_cnm"); }),
            "error: unknown model 'simple_cnm' (did you mean 'simple_cnn'? known: resnet50, "
            "simple_cnn, tsn)");
  EXPECT_EQ(message([] { registry::schema("modle", "x"); }),
            "error: unknown component kind 'modle' (did you mean 'model'? known: model)");
}
