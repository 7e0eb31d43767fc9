#include "engine/config/edit.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "engine/config/config.h"
#include "engine/config/schema.h"

namespace fs = std::filesystem;
using namespace oar;

namespace {

const char* kSample = R"(# TSN on Kinetics-400
_base_: [../_base_/runtime.yaml]

model:
  name: tsn  # the 2016 paper
  backbone:
    depth: 50
    pretrained: "weights/r50.safetensors"
  dims: [1, 2, 3]
  head: {dropout: 0.4, classes: 400}

# data pipeline
data:
  seg_num: 3
  stages:
    - 1
    - 2
  train:
    file_list: 'lists/train.txt'
    transforms:
      - name: scale
        size: 256
      - name: crop
        size: 224
  valid:

optimizer:
  lr: 0.01   # tuned for 8 GPUs
)";

std::string message(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

// Lines of `b` that are not in `a` at the same position (both have the same line count here).
std::vector<std::string> changed_lines(const std::string& a, const std::string& b) {
  std::istringstream sa(a), sb(b);
  std::vector<std::string> out;
  std::string la, lb;
  while (std::getline(sb, lb)) {
    if (!std::getline(sa, la)) la = "<none>";
    if (la != lb) out.push_back(lb);
  }
  return out;
}

}  // namespace

TEST(Edit, ScalarsInBlockAndFlowStyleTouchOnlyTheirLines) {
  std::string out =
      set_in_text(kSample, "tsn.yaml",
                  {"model.backbone.depth=101", "model.head.dropout=0.5", "model.dims[1]=20",
                   "optimizer.lr=0.1", "model.name=tsm", "data.train.file_list=lists/t2.txt",
                   "data.train.transforms[1].size=192", "model.backbone.pretrained=w.bin"});
  EXPECT_EQ(
      changed_lines(kSample, out),
      (std::vector<std::string>{
          "  name: tsm  # the 2016 paper", "    depth: 101", "    pretrained: \"w.bin\"",
          "  dims: [1, 20, 3]", "  head: {dropout: 0.5, classes: 400}",
          "    file_list: 'lists/t2.txt'", "        size: 192", "  lr: 0.1   # tuned for 8 GPUs"}));
  YAML::Node c = YAML::Load(out);
  EXPECT_EQ(c["model"]["backbone"]["depth"].as<int>(), 101);
  EXPECT_EQ(c["data"]["train"]["transforms"][1]["size"].as<int>(), 192);
  EXPECT_EQ(c["data"]["train"]["transforms"][0]["size"].as<int>(), 256);
}

TEST(Edit, NewKeysGoAtTheEndOfTheirParentMap) {
  std::string out =
      set_in_text(kSample, "tsn.yaml",
                  {"model.backbone.frozen=true", "data.num_workers=4", "trainer.epochs=30",
                   "model.head.act=relu", "data.valid.seg_num=7", "data.test.batch.size=1"});
  std::string expected = kSample;
  auto insert_after = [&](const std::string& line, const std::string& add) {
    size_t p = expected.find(line);
    ASSERT_NE(p, std::string::npos) << line;
    expected.insert(p + line.size(), add);
  };
  insert_after("    pretrained: \"weights/r50.safetensors\"", "\n    frozen: true");
  insert_after("  head: {dropout: 0.4, classes: 400", ", act: relu");
  insert_after("  valid:",
               "\n    seg_num: 7\n  num_workers: 4\n  test:\n    batch:\n      size: 1");
  insert_after("  lr: 0.01   # tuned for 8 GPUs", "\ntrainer:\n  epochs: 30");
  EXPECT_EQ(out, expected);
}

TEST(Edit, BlockValuesReplacedByScalars) {
  std::string out =
      set_in_text(kSample, "tsn.yaml",
                  {"data.stages=[4, 5]", "data.train.transforms=none", "model.backbone=resnet"});
  std::string expected = kSample;
  auto replace = [&](const std::string& from, const std::string& to) {
    size_t p = expected.find(from);
    ASSERT_NE(p, std::string::npos) << from;
    expected.replace(p, from.size(), to);
  };
  replace("  stages:\n    - 1\n    - 2\n", "  stages: [4, 5]\n");
  replace(
      "    transforms:\n      - name: scale\n        size: 256\n      - name: crop\n        size: "
      "224\n",
      "    transforms: none\n");
  replace("  backbone:\n    depth: 50\n    pretrained: \"weights/r50.safetensors\"\n",
          "  backbone: resnet\n");
  EXPECT_EQ(out, expected);
  // a list at its key's indentation, and a list element that is a map
  std::string flat = "a:\n- x: 1\n  y: 2\n- x: 3\nb: 1\n";
  EXPECT_EQ(set_in_text(flat, "f.yaml", {"a[0]=7"}), "a:\n- 7\n- x: 3\nb: 1\n");
  EXPECT_EQ(set_in_text(flat, "f.yaml", {"a=[]"}), "a: []\nb: 1\n");
  EXPECT_EQ(set_in_text("a: |\n  text\n  more\nb: 1\n", "f.yaml", {"a=short"}), "a: short\nb: 1\n");
}

TEST(Edit, NullsEmptyFilesAndQuoting) {
  EXPECT_EQ(set_in_text("a:\nb: 1\n", "f.yaml", {"a=2"}), "a: 2\nb: 1\n");
  EXPECT_EQ(set_in_text("a: ~  # unset\n", "f.yaml", {"a=2"}), "a: 2  # unset\n");
  EXPECT_EQ(set_in_text("a:\nb: 1\n", "f.yaml", {"a.c=2"}), "a:\n  c: 2\nb: 1\n");
  EXPECT_EQ(set_in_text("", "f.yaml", {"a.b=1"}), "a:\n  b: 1\n");
  EXPECT_EQ(set_in_text("# only a comment", "f.yaml", {"x=1"}), "# only a comment\nx: 1\n");
  EXPECT_EQ(set_in_text("a: 'it''s'\n", "f.yaml", {"a=it's here"}), "a: 'it''s here'\n");
  EXPECT_EQ(set_in_text("a: \"x\"\n", "f.yaml", {"a=3"}), "a: 3\n");  // a number stays a number
  EXPECT_EQ(set_in_text("a: {b: {}}\n", "f.yaml", {"a.b.c=1"}), "a: {b: {c: 1}}\n");
  EXPECT_EQ(set_in_text("a: [1, {k: v}]\n", "f.yaml", {"a[1].k=w"}), "a: [1, {k: w}]\n");
}

TEST(Edit, BadInput) {
  EXPECT_EQ(message([] { set_in_text("a: 1\n", "f.yaml", {"a"}); }),
            "error: f.yaml: a: bad assignment: no '=' (expected KEY=VALUE with KEY like a.b[1].c, "
            "e.g. optimizer.lr=0.1)");
  EXPECT_EQ(message([] { set_in_text("a: [1]\n", "f.yaml", {"a[3]=1"}); }),
            "error: f.yaml: a[3]: no list element a[3] (the list has 1 elements)");
  EXPECT_EQ(message([] { set_in_text("a: 1\n", "f.yaml", {"a.b=1"}); }),
            "error: f.yaml: a.b: cannot add keys under a (a is int 1, not a map)");
  EXPECT_EQ(message([] { set_in_text("a: [1\n", "f.yaml", {"a=1"}); }).rfind("error: f.yaml:2:", 0),
            0u);
  EXPECT_EQ(message([] { set_in_text("a: [1, 2]\n", "f.yaml", {"a[0]=x, y"}); }),
            "error: f.yaml: a[0]=x, y: cannot apply this edit safely (the result would read as "
            "{a: [x, y, 2]})");
  EXPECT_EQ(message([] { set_in_text("a: 1\n", "f.yaml", {"a=b: c"}); }),
            "error: f.yaml: a=b: c: the edit would break the file: illegal map value (quote the "
            "value, e.g. key='text')");
}

TEST(Edit, FileIsValidatedAndWrittenAtomically) {
  fs::path dir = fs::temp_directory_path() / ("oar_edit_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::path p = dir / "c.yaml";
  std::ofstream(p) << "model:\n  # classes in the dataset\n  num_classes: 10\n";
  Schema s = Schema("model", "m", "").key<int64_t>("num_classes", 1, "classes").range(1, 1000);
  auto validate_text = [&](const std::string& text) {
    Config c = Config::from_string(text, p.string());
    validate(c, "model", s);
  };
  set_in_file(p, {"model.num_classes=400"}, validate_text);
  auto read = [&] {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  EXPECT_EQ(read(), "model:\n  # classes in the dataset\n  num_classes: 400\n");
  EXPECT_EQ(message([&] { set_in_file(p, {"model.num_classes=0"}, validate_text); }),
            "error: " + p.string() + ":3: model.num_classes: value 0 is out of range (1 to 1000)");
  EXPECT_EQ(message([&] { set_in_file(p, {"model.num_clases=5"}, validate_text); }),
            "error: " + p.string() +
                ":4: model.num_clases: unknown key for model 'm' (did you mean 'num_classes'? "
                "valid keys: num_classes)");
  EXPECT_EQ(read(), "model:\n  # classes in the dataset\n  num_classes: 400\n");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
  fs::remove_all(dir);
}
