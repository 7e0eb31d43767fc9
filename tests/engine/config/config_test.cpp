#include "engine/config/config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

namespace fs = std::filesystem;
using namespace oar;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    std::string templ = (fs::temp_directory_path() / "oar_config_XXXXXX").string();
    path = ::mkdtemp(templ.data());
  }
  ~TempDir() { fs::remove_all(path); }
  std::string write(const std::string& name, const std::string& text) const {
    fs::path p = path / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p.string();
  }
};

std::string message(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(Config, TypedGetters) {
  Config c = Config::from_string(
      "model:\n  num_classes: 10\n  dropout: 0.5\n  name: tsn\n  dims: [1, 2, 3]\n"
      "  train: true\n  quoted: \"10\"\n",
      "m.yaml");
  EXPECT_EQ(c.get<int64_t>("model.num_classes"), 10);
  EXPECT_EQ(c.get<int>("model.num_classes"), 10);
  EXPECT_DOUBLE_EQ(c.get<double>("model.dropout"), 0.5);
  EXPECT_DOUBLE_EQ(c.get<double>("model.num_classes"), 10.0);  // ints are floats too
  EXPECT_EQ(c.get<std::string>("model.name"), "tsn");
  EXPECT_EQ(c.get<std::vector<int64_t>>("model.dims"), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_TRUE(c.get<bool>("model.train"));
  EXPECT_EQ(c.get<std::string>("model.quoted"), "10");
  EXPECT_EQ(c.get<int>("model.missing", 7), 7);
  EXPECT_TRUE(c.has("model.dims[2]"));
  EXPECT_FALSE(c.has("model.dims[3]"));
  EXPECT_EQ(c.get<int>("model.dims[1]"), 2);
  EXPECT_EQ(message([&] { c.get<int64_t>("model.dropout"); }),
            "error: m.yaml:3: model.dropout: expected an int, got float 0.5");
  EXPECT_EQ(message([&] { c.get<int64_t>("model.quoted"); }),
            "error: m.yaml:7: model.quoted: expected an int, got string '10'");
  EXPECT_EQ(message([&] { c.get<int64_t>("model.nope"); }),
            "error: m.yaml:1: model.nope: missing required key");
  EXPECT_EQ(message([&] { c.get<std::vector<int>>("model.name"); }),
            "error: m.yaml:4: model.name: expected a list of int, got string 'tsn'");
}

TEST(Config, MalformedYamlNamesLineAndColumn) {
  EXPECT_EQ(
      message([] { Config::from_string("a: 1\nb: [1, 2\nc: 3\n", "bad.yaml"); }).substr(0, 25),
      "error: bad.yaml:3:2: malf");
  std::string m = message([] { Config::from_string("a: 1\n  b: 2\n", "bad.yaml"); });
  EXPECT_EQ(m.rfind("error: bad.yaml:2:", 0), 0u) << m;
  EXPECT_NE(m.find("malformed YAML"), std::string::npos);
  EXPECT_EQ(message([] { Config::from_string("- 1\n- 2\n", "l.yaml"); }),
            "error: l.yaml:1: the top level of a config must be a map (got a list)");
  EXPECT_EQ(message([] { Config::from_string("a: 1\nb: 2\na: 3\n", "d.yaml"); }),
            "error: d.yaml:3: a: duplicate key (first set on line 1)");
}

TEST(Config, BasesMergeDeeplyAndListsReplace) {
  TempDir t;
  t.write("_base_/model.yaml",
          "model:\n  name: tsn\n  backbone:\n    depth: 50\n    frozen: [1, 2]\n  dropout: 0.5\n");
  t.write("_base_/data.yaml", "data:\n  seg_num: 3\nmodel:\n  dropout: 0.4\n");
  std::string top = t.write("exp/run.yaml",
                            "_base_: [../_base_/model.yaml, ../_base_/data.yaml]\n"
                            "model:\n  backbone:\n    frozen: [3]\n");
  Config c = Config::load(top);
  EXPECT_EQ(c.get<std::string>("model.name"), "tsn");
  EXPECT_EQ(c.get<int>("model.backbone.depth"), 50);
  EXPECT_EQ(c.get<std::vector<int>>("model.backbone.frozen"), std::vector<int>{3});
  EXPECT_DOUBLE_EQ(c.get<double>("model.dropout"), 0.4);  // the later base wins
  EXPECT_EQ(c.get<int>("data.seg_num"), 3);
  EXPECT_FALSE(c.has("_base_"));
  Origin o = c.origin("model.backbone.depth");
  EXPECT_EQ(fs::path(o.file).filename(), "model.yaml");
  EXPECT_EQ(o.line, 4);
  EXPECT_EQ(fs::path(c.origin("model.backbone.frozen").file).filename(), "run.yaml");
  EXPECT_EQ(c.origin("model.backbone.frozen").line, 4);
  EXPECT_EQ(fs::path(c.origin("model.dropout").file).filename(), "data.yaml");

  // a single string works as well
  std::string one = t.write("exp/one.yaml", "_base_: ../_base_/data.yaml\ndata:\n  seg_num: 8\n");
  EXPECT_EQ(Config::load(one).get<int>("data.seg_num"), 8);
}

TEST(Config, MissingAndCyclicBases) {
  TempDir t;
  std::string a = t.write("a.yaml", "_base_: b.yaml\nx: 1\n");
  t.write("b.yaml", "_base_: [c.yaml]\n");
  t.write("c.yaml", "_base_: a.yaml\n");
  std::string m = message([&] { Config::load(a); });
  std::string d = t.path.string() + "/";
  EXPECT_EQ(m, "error: " + d + "c.yaml:1: _base_: cyclic _base_: " + d + "a.yaml -> " + d +
                   "b.yaml -> " + d + "c.yaml -> " + d + "a.yaml");
  std::string lost = t.write("lost.yaml", "x: 1\n_base_: [nowhere.yaml]\n");
  EXPECT_EQ(message([&] { Config::load(lost); }),
            "error: " + d + "lost.yaml:2: _base_: cannot read base config '" + d +
                "nowhere.yaml' (No such file or directory)");
  EXPECT_EQ(message([&] { Config::load(d + "absent.yaml"); }),
            "error: " + d + "absent.yaml: cannot read config (No such file or directory)");
}

TEST(Config, OverridesAreTypedAsYaml) {
  Config c = Config::from_string(
      "optimizer:\n  lr: 0.1\nmodel:\n  layers:\n    - {width: 8}\n    - {width: 16}\n", "o.yaml",
      {"optimizer.lr=0.01", "model.layers[1].width=32", "model.dims=[1,2]", "model.name=foo",
       "trainer.epochs=3", "model.layers[0]={width: 4, act: relu}"});
  EXPECT_DOUBLE_EQ(c.get<double>("optimizer.lr"), 0.01);
  EXPECT_EQ(c.get<int>("model.layers[1].width"), 32);
  EXPECT_EQ(c.get<std::vector<int>>("model.dims"), (std::vector<int>{1, 2}));
  EXPECT_EQ(c.get<std::string>("model.name"), "foo");
  EXPECT_EQ(c.get<int>("trainer.epochs"), 3);
  EXPECT_EQ(c.get<std::string>("model.layers[0].act"), "relu");
  EXPECT_EQ(c.origin("optimizer.lr").source, "override");
  EXPECT_EQ(c.origin("model.layers[0].act").source, "override");
  EXPECT_EQ(c.origin("model.layers[1]").source, "file");
  EXPECT_EQ(message([&] { c.get<int>("model.name"); }),
            "error: -o: model.name: expected an int, got string 'foo'");
}

TEST(Config, BadOverrideSyntax) {
  const std::string allowed =
      " (expected KEY=VALUE with KEY like a.b[1].c, e.g. -o optimizer.lr=0.1)";
  auto bad = [](const std::string& o) {
    return message([&] { Config::from_string("a: {b: 1}\n", "x.yaml", {o}); });
  };
  EXPECT_EQ(bad("lr"), "error: -o: lr: bad override: no '='" + allowed);
  EXPECT_EQ(bad("a..b=1"), "error: -o: a..b=1: bad override key 'a..b'" + allowed);
  EXPECT_EQ(bad("a[x]=1"), "error: -o: a[x]=1: bad override key 'a[x]'" + allowed);
  EXPECT_EQ(bad("=1"), "error: -o: =1: bad override key ''" + allowed);
  EXPECT_EQ(bad("a.b=[1,"), bad("a.b=[1,"));
  EXPECT_NE(bad("a.b=[1,").find("error: -o: a.b=[1,: value is not valid YAML"), std::string::npos);
  EXPECT_EQ(bad("a.b.c=1"), "error: -o: a.b.c=1: cannot set a.b.c (a.b is int 1, not a map)");
  EXPECT_EQ(bad("a.l[2]=1"), "error: -o: a.l[2]=1: no list a.l (index into an existing list)");
}

TEST(Config, EnvironmentExpansion) {
  ::setenv("OAR_TEST_ROOT", "/data/k400", 1);
  ::unsetenv("OAR_TEST_UNSET");
  Config c = Config::from_string(
      "data:\n  root: ${OAR_TEST_ROOT}/videos\n  cache: ${OAR_TEST_UNSET:-/tmp/cache}\n"
      "  n: ${OAR_TEST_UNSET:-4}\n",
      "e.yaml");
  EXPECT_EQ(c.get<std::string>("data.root"), "/data/k400/videos");
  EXPECT_EQ(c.get<std::string>("data.cache"), "/tmp/cache");
  EXPECT_EQ(c.get<int>("data.n"), 4);
  EXPECT_EQ(c.origin("data.root").source, "env");
  EXPECT_EQ(c.origin("data.root").line, 2);
  EXPECT_EQ(message([] { Config::from_string("a: 1\nb:\n  - ${OAR_TEST_UNSET}/x\n", "e.yaml"); }),
            "error: e.yaml:3: b[0]: environment variable OAR_TEST_UNSET is not set "
            "(set it, or write ${OAR_TEST_UNSET:-default})");
}

TEST(Config, ModeSectionsOverrideSharedKeys) {
  Config c = Config::from_string(
      "data:\n  seg_num: 3\n  batch_size: 8\n  augment: {flip: true, crop: 224}\n"
      "  train:\n    file_list: train.txt\n  test:\n    seg_num: 7\n    augment: {flip: false}\n",
      "v.yaml");
  Config train = c.mode("data", "train");
  EXPECT_EQ(train.get<int>("data.seg_num"), 3);
  EXPECT_EQ(train.get<std::string>("data.file_list"), "train.txt");
  EXPECT_FALSE(train.has("data.train"));
  EXPECT_FALSE(train.has("data.test"));
  Config test = c.mode("data", "test");
  EXPECT_EQ(test.get<int>("data.seg_num"), 7);
  EXPECT_FALSE(test.get<bool>("data.augment.flip"));
  EXPECT_EQ(test.get<int>("data.augment.crop"), 224);
  EXPECT_EQ(test.origin("data.seg_num").line, 8);
  EXPECT_EQ(test.origin("data.batch_size").line, 3);
  EXPECT_FALSE(test.has("data.file_list"));
  // the original is untouched
  EXPECT_EQ(c.get<int>("data.test.seg_num"), 7);
  EXPECT_EQ(c.get<int>("data.seg_num"), 3);
}

TEST(Config, DumpWithOrigins) {
  Config c = Config::from_string("model:\n  name: tsn\n  dims: [1, 2]\n  q: \"10\"\nlr: 0.1\n",
                                 "d.yaml", {"lr=0.2"});
  c.set("model.depth", YAML::Node(50), Origin{"", 0, 0, "default"});
  EXPECT_EQ(c.dump(), "model:\n  name: tsn\n  dims: [1, 2]\n  q: \"10\"\n  depth: 50\nlr: 0.2\n");
  EXPECT_EQ(
      c.dump(true),
      "model:  # from d.yaml:1\n  name: tsn  # from d.yaml:2\n  dims: [1, 2]  # from d.yaml:3\n"
      "  q: \"10\"  # from d.yaml:4\n  depth: 50  # default\nlr: 0.2  # from -o\n");
  // the dump reads back to the same config
  Config back = Config::from_string(c.dump(), "back.yaml");
  EXPECT_EQ(diff(c, back), "");
  EXPECT_EQ(back.get<std::string>("model.q"), "10");
  EXPECT_EQ(message([&] { back.get<int>("model.q"); }),
            "error: back.yaml:4: model.q: expected an int, got string '10'");
}

TEST(Config, DumpListsOfMaps) {
  Config c =
      Config::from_string("t:\n  - {name: a, size: 1}\n  - name: b\n    args: {k: [1, 2]}\n", "x");
  Config back = Config::from_string(c.dump(), "y");
  EXPECT_EQ(diff(c, back), "");
  EXPECT_EQ(back.get<int>("t[1].args.k[1]"), 2);
}

TEST(Config, Diff) {
  Config a = Config::from_string("m: {x: 1, y: [1, 2], z: a}\nlr: 0.1\n", "a");
  Config b = Config::from_string("m: {x: 2, y: [1, 2], w: true}\nlr: 0.1\n", "b");
  EXPECT_EQ(diff(a, b), "+ m.w: true\n~ m.x: 1 -> 2\n- m.z: a\n");
  EXPECT_EQ(diff(a, a), "");
}

TEST(Config, SetAndCopyAreIndependent) {
  Config a = Config::from_string("m: {x: 1}\n", "a");
  Config b = a;
  b.set("m.x", YAML::Node(5), Origin{"", 0, 0, "default"});
  b.set("n.y.z", YAML::Node("hi"), Origin{"", 0, 0, "default"});
  EXPECT_EQ(a.get<int>("m.x"), 1);
  EXPECT_EQ(b.get<int>("m.x"), 5);
  EXPECT_EQ(b.get<std::string>("n.y.z"), "hi");
  a = b;
  b.erase("m.x");
  EXPECT_TRUE(a.has("m.x"));
  EXPECT_FALSE(b.has("m.x"));
  EXPECT_EQ(a.keys("n"), std::vector<std::string>{"y"});
}
