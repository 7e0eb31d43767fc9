// video-tag: one record per video in input order with the model's real scores and class names,
// fixed windows, an error record for a corrupt file while the others are tagged, resume after a
// kill (partial last line), and the two-stage mode (TSN features -> Attention LSTM).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "engine/ops.h"
#include "readers/features/feature_dataset.h"
#include "readers/features/feature_file.h"
#include "readers/video/sampling.h"
#include "readers/video/video_dataset.h"
#include "tests/video/tagging/tagging_support.h"
#include "video/extract/extract.h"
#include "video/models/sequence_model.h"
#include "video/tagging/tagger.h"

using namespace oar;
using namespace oar::video;
using namespace oar::video::testing;

namespace {

std::vector<Json> read_records(const fs::path& p) {
  std::ifstream in(p);
  std::vector<Json> out;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(Json::parse(line, p.string()));
  return out;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class TaggerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    register_for_tests();
    dir_ = new TempDir("video_tag_test");
    synth_clips(dir_->path / "clips");
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::vector<std::string> clips() {
    return resolve_tag_inputs({(dir_->path / "clips" / "train").string()});
  }
  static TempDir* dir_;
};
TempDir* TaggerTest::dir_ = nullptr;

TEST_F(TaggerTest, RecordsCarryTheModelsScoresAndClassNames) {
  LoadedModel m = make_checkpoint(kTsnYaml, dir_->path / "tsn_a", 1);
  VideoTagger tagger(m, TagOptions{});
  tagger.set_labels(resolve_class_names(tagger.config(), 3, ""), false);
  const std::vector<std::string> videos = clips();
  ASSERT_EQ(videos.size(), 6u);
  const fs::path out_file = dir_->path / "a.jsonl";
  {
    TagOutput out(out_file.string());
    const TagSummary s = tagger.run(videos, out);
    EXPECT_EQ(s.tagged, 6);
    EXPECT_EQ(s.failed, 0);
  }
  const std::vector<Json> recs = read_records(out_file);
  ASSERT_EQ(recs.size(), 6u);

  // The same clip through the `video` reader (independent sampling and decoding code) and the
  // model directly: the record's scores are its softmax, sorted.
  readers::VideoDatasetOptions vo;
  vo.sampling.seg_num = 3;
  vo.transforms = clip_preprocess(m.config).transforms;
  std::vector<readers::VideoEntry> entries;
  for (const auto& v : videos) entries.push_back({v, {}, 0});
  readers::VideoDataset ds(entries, vo);
  for (size_t i = 0; i < videos.size(); ++i) {
    EXPECT_EQ(recs[i].at("path").as_string(), videos[i]);
    EXPECT_NEAR(recs[i].at("duration").as_double(), 2.0, 1e-6);
    EXPECT_EQ(recs[i].at("frames").as_int(), 16);
    Generator rng(0);
    const Tensor x = ds.get(static_cast<int64_t>(i), rng).fields.at("video").unsqueeze(0);
    std::vector<float> p;
    {
      NoGradGuard g;
      p = softmax((*m.module)(x), -1).contiguous().to_vector<float>();
    }
    const auto& labels = recs[i].at("labels").as_array();
    ASSERT_EQ(labels.size(), 3u);  // top-5 of 3 classes
    const char* names[] = {"circle", "square", "triangle"};
    double sum = 0;
    for (size_t j = 0; j < labels.size(); ++j) {
      const int64_t id = labels[j].at("id").as_int();
      EXPECT_EQ(labels[j].at("name").as_string(), names[id]);
      EXPECT_NEAR(labels[j].at("score").as_double(), p[static_cast<size_t>(id)], 2e-6);
      if (j > 0) {
        EXPECT_GE(labels[j - 1].at("score").as_double(), labels[j].at("score").as_double());
      }
      sum += labels[j].at("score").as_double();
    }
    EXPECT_NEAR(sum, 1.0, 1e-5);
  }
  // Different clips give different scores (the model really looks at them).
  EXPECT_NE(recs[0].at("labels").dump(), recs[1].at("labels").dump());
}

TEST_F(TaggerTest, SeveralViewsAreScoredAndAveraged) {
  // Dense sampling with 2 clips (views) of 2 frames, as multi-view testing does.
  std::string yaml = kTsnYaml;
  yaml.replace(yaml.find("seg_num: 3"), 10,
               "sampling: dense\n    clip_len: 2\n    frame_interval: 3\n    num_clips: 2");
  LoadedModel m = make_checkpoint(yaml, dir_->path / "tsn_v", 9);
  VideoTagger tagger(m, TagOptions{});
  const std::vector<std::string> videos = {clips()[1]};
  const fs::path out_file = dir_->path / "v.jsonl";
  {
    TagOutput out(out_file.string());
    ASSERT_EQ(tagger.run(videos, out).tagged, 1);
  }
  readers::VideoDatasetOptions vo;
  vo.sampling.dense = true;
  vo.sampling.clip_len = 2;
  vo.sampling.frame_interval = 3;
  vo.sampling.num_clips = 2;
  vo.transforms = clip_preprocess(m.config).transforms;
  readers::VideoDataset ds({{videos[0], {}, 0}}, vo);
  Generator rng(0);
  const Tensor x = ds.get(0, rng).fields.at("video");  // [V, T, C, H, W]
  ASSERT_EQ(x.dim(), 5);
  ASSERT_EQ(x.size(0), 2);
  std::vector<float> p;
  {
    NoGradGuard g;
    p = mean(softmax((*m.module)(x), -1), {0}).contiguous().to_vector<float>();
  }
  const std::vector<Json> recs = read_records(out_file);
  ASSERT_EQ(recs.size(), 1u);
  for (const auto& l : recs[0].at("labels").as_array())
    EXPECT_NEAR(l.at("score").as_double(), p[static_cast<size_t>(l.at("id").as_int())], 2e-6);
}

TEST_F(TaggerTest, WindowsHaveTimesAndTheirOwnLabels) {
  LoadedModel m = make_checkpoint(kTsnYaml, dir_->path / "tsn_w", 2);
  TagOptions o;
  o.window_s = 0.75;
  o.stride_s = 0.5;
  o.topk = 2;
  VideoTagger tagger(m, o);
  const std::vector<std::string> videos = {clips()[0]};
  const fs::path out_file = dir_->path / "w.jsonl";
  {
    TagOutput out(out_file.string());
    tagger.run(videos, out);
  }
  const std::vector<Json> recs = read_records(out_file);
  ASSERT_EQ(recs.size(), 1u);
  const auto& w = recs[0].at("windows").as_array();
  // 2 s: [0,0.75) [0.5,1.25) [1,1.75) [1.5,2).
  ASSERT_EQ(w.size(), 4u);
  const double starts[] = {0, 0.5, 1.0, 1.5}, ends[] = {0.75, 1.25, 1.75, 2.0};
  for (size_t k = 0; k < 4; ++k) {
    EXPECT_DOUBLE_EQ(w[k].at("start").as_double(), starts[k]);
    EXPECT_DOUBLE_EQ(w[k].at("end").as_double(), ends[k]);
    EXPECT_EQ(w[k].at("labels").as_array().size(), 2u);
    EXPECT_FALSE(w[k].at("labels").as_array()[0].contains("name"));  // 3 classes: no names
  }
  // Window 3 ([1.5, 2) at 8 fps: frames 12..15) scored directly.
  readers::VideoDecoder dec(videos[0]);
  Generator rng(0);
  std::vector<int64_t> idx = readers::sample_tsn(4, 3, 1, false, rng);
  for (auto& i : idx) i += 12;
  const Tensor clip = preprocess_clip(dec.decode(idx), clip_preprocess(m.config), 3, rng);
  const std::vector<float> p = tagger.clip_scores(clip.unsqueeze(0)).to_vector<float>();
  const auto& top = w[3].at("labels").as_array()[0];
  EXPECT_NEAR(top.at("score").as_double(), p[static_cast<size_t>(top.at("id").as_int())], 2e-6);
  EXPECT_NE(w[0].at("labels").dump(), w[3].at("labels").dump());
  // The video's labels are the mean of its windows' scores: in [min, max] of the windows.
  EXPECT_EQ(recs[0].at("labels").as_array().size(), 2u);
}

TEST_F(TaggerTest, CorruptFileGivesAnErrorRecordAndTheRunGoesOn) {
  LoadedModel m = make_checkpoint(kTsnYaml, dir_->path / "tsn_c", 3);
  std::vector<std::string> videos = clips();
  const fs::path bad = dir_->path / "broken.mp4";
  {
    const std::string good = slurp(videos[0]);
    std::ofstream(bad, std::ios::binary) << good.substr(0, good.size() / 3);  // truncated
  }
  const fs::path junk = dir_->path / "junk.mkv";
  std::ofstream(junk) << "not a video at all";
  videos.insert(videos.begin() + 2, bad.string());
  videos.push_back(junk.string());
  videos.push_back((dir_->path / "missing.mp4").string());
  TagOptions o;
  o.workers = 3;
  o.queue = 1;
  VideoTagger tagger(m, o);
  const fs::path out_file = dir_->path / "c.jsonl";
  TagSummary s;
  {
    TagOutput out(out_file.string());
    s = tagger.run(videos, out);
  }
  EXPECT_EQ(s.tagged, 6);
  EXPECT_EQ(s.failed, 3);
  const std::vector<Json> recs = read_records(out_file);
  ASSERT_EQ(recs.size(), videos.size());
  for (size_t i = 0; i < videos.size(); ++i) {
    EXPECT_EQ(recs[i].at("path").as_string(), videos[i]);
    const bool broken = videos[i] == bad.string() || videos[i] == junk.string() ||
                        videos[i].find("missing") != std::string::npos;
    EXPECT_EQ(recs[i].contains("error"), broken) << videos[i];
    if (broken) {
      EXPECT_FALSE(recs[i].contains("labels"));
      EXPECT_NE(recs[i].at("error").as_string().find(videos[i]), std::string::npos)
          << recs[i].at("error").as_string();
    }
  }
}

TEST_F(TaggerTest, ResumeSkipsTaggedVideosAndRepairsAPartialLine) {
  LoadedModel m = make_checkpoint(kTsnYaml, dir_->path / "tsn_r", 4);
  const std::vector<std::string> videos = clips();
  const fs::path out_file = dir_->path / "r.jsonl";
  VideoTagger tagger(m, TagOptions{});
  {
    TagOutput out(out_file.string());
    tagger.run({videos[0], videos[1], videos[2]}, out);
  }
  const std::string first = slurp(out_file);
  // A run killed while writing the 4th record.
  std::ofstream(out_file, std::ios::app) << "{\"path\": \"" << videos[3] << "\", \"dura";
  TagSummary s;
  {
    TagOutput out(out_file.string());
    EXPECT_GT(out.repaired_bytes(), 0);
    EXPECT_TRUE(out.done(videos[0]));
    EXPECT_FALSE(out.done(videos[3]));
    s = tagger.run(videos, out);
  }
  EXPECT_EQ(s.skipped, 3);
  EXPECT_EQ(s.tagged, 3);
  const std::string all = slurp(out_file);
  EXPECT_EQ(all.substr(0, first.size()), first);  // earlier records untouched
  const std::vector<Json> recs = read_records(out_file);
  ASSERT_EQ(recs.size(), 6u);
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(recs[i].at("path").as_string(), videos[i]);
  // A third run has nothing to do and leaves the file byte for byte.
  {
    TagOutput out(out_file.string());
    EXPECT_EQ(tagger.run(videos, out).tagged, 0);
  }
  EXPECT_EQ(slurp(out_file), all);
}

TEST_F(TaggerTest, TwoStagesExtractThenSequenceModel) {
  LoadedModel tsn = make_checkpoint(kTsnYaml, dir_->path / "tsn_x", 5);
  auto ex = std::make_unique<FrameFeatureExtractor>(tsn);
  const int64_t dim = ex->feature_dim();
  EXPECT_EQ(dim, 128);
  const std::vector<std::string> videos = clips();

  // Stage 1 offline: `oar video extract`'s library call writes features and a list.
  ExtractOptions eo;
  eo.out_dir = (dir_->path / "features").string();
  eo.base = (dir_->path / "clips").string();
  eo.list_name = "train.list";
  const auto entries = readers::read_video_list(
      (dir_->path / "clips" / "train_appearance.list").string(), "", false, true);
  const ExtractResult er = extract_features(*ex, entries, eo);
  EXPECT_EQ(er.written, 6);
  EXPECT_TRUE(er.failures.empty());
  const auto files = readers::read_feature_list(er.list_file, "");
  ASSERT_EQ(files.size(), 6u);
  const readers::FeatureRecord rec = readers::read_feature_file(files[0]);
  EXPECT_EQ(rec.labels, entries[0].labels);
  const Tensor f0 = rec.get("rgb");
  ASSERT_EQ(f0.shape(), (Shape{16, dim}));

  LoadedModel lstm = make_checkpoint(lstm_yaml(dim), dir_->path / "lstm", 6);
  auto* seq = dynamic_cast<SequenceModel*>(lstm.module.get());
  ASSERT_NE(seq, nullptr);
  std::vector<float> want;
  {
    NoGradGuard g;
    want = sigmoid(seq->forward(std::vector<Tensor>{f0.unsqueeze(0)}, tensor<int64_t>({16}, {1})))
               .contiguous()
               .to_vector<float>();
  }

  // Both stages in one run, windows too.
  TagOptions o;
  o.window_s = 1.0;
  VideoTagger tagger(std::move(ex), lstm, o);
  tagger.set_labels({"circle", "square", "triangle"}, is_multi_label(tagger.config(), true));
  EXPECT_TRUE(tagger.options().multi_label);
  const fs::path out_file = dir_->path / "two.jsonl";
  {
    TagOutput out(out_file.string());
    EXPECT_EQ(tagger.run(videos, out).tagged, 6);
  }
  const std::vector<Json> recs = read_records(out_file);
  ASSERT_EQ(recs.size(), 6u);
  // Same features (f32 file vs in-process) -> same sigmoid scores, not summing to 1.
  double sum = 0;
  for (const auto& l : recs[0].at("labels").as_array()) {
    EXPECT_NEAR(l.at("score").as_double(), want[static_cast<size_t>(l.at("id").as_int())], 2e-6);
    sum += l.at("score").as_double();
  }
  EXPECT_GT(std::abs(sum - 1.0), 1e-3);
  const auto& w = recs[0].at("windows").as_array();
  ASSERT_EQ(w.size(), 2u);
  EXPECT_DOUBLE_EQ(w[1].at("start").as_double(), 1.0);
  EXPECT_DOUBLE_EQ(w[1].at("end").as_double(), 2.0);
  // Window 1 holds frames 8..15.
  std::vector<float> w1;
  {
    NoGradGuard g;
    w1 = sigmoid(seq->forward(std::vector<Tensor>{f0.narrow(0, 8, 8).unsqueeze(0)},
                              tensor<int64_t>({8}, {1})))
             .contiguous()
             .to_vector<float>();
  }
  const auto& top = w[1].at("labels").as_array()[0];
  EXPECT_NEAR(top.at("score").as_double(), w1[static_cast<size_t>(top.at("id").as_int())], 2e-6);
}

TEST_F(TaggerTest, SequenceModelAloneOrWrongWidthIsAClearError) {
  LoadedModel lstm = make_checkpoint(lstm_yaml(64), dir_->path / "lstm64", 7);
  try {
    VideoTagger t(lstm, TagOptions{});
    FAIL() << "a sequence model alone was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("two-stage"), std::string::npos) << e.what();
  }
  LoadedModel tsn = make_checkpoint(kTsnYaml, dir_->path / "tsn_e", 8);
  try {
    VideoTagger t(std::make_unique<FrameFeatureExtractor>(tsn), lstm, TagOptions{});
    FAIL() << "a width mismatch was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("rgb [64]"), std::string::npos) << e.what();
  }
}

TEST(ClassNames, KineticsDefaultForFourHundredClassesAndCountsChecked) {
  Config c = Config::from_string("model: {name: tsn}\n");
  if (fs::exists(kKinetics400Names)) {
    const auto names = resolve_class_names(c, 400, "");
    ASSERT_EQ(names.size(), 400u);
    EXPECT_EQ(names[0], "abseiling");
  }
  EXPECT_TRUE(resolve_class_names(c, 3, "").empty());
  Config named = Config::from_string("task: {class_names: [a, b]}\n");
  EXPECT_EQ(resolve_class_names(named, 2, ""), (std::vector<std::string>{"a", "b"}));
  EXPECT_THROW(resolve_class_names(named, 3, ""), Error);
  EXPECT_FALSE(is_multi_label(c, false));
  EXPECT_TRUE(is_multi_label(c, true));
  EXPECT_TRUE(is_multi_label(Config::from_string("task: {multi_label: true}\n"), false));
}

TEST(FixedWindows, CoverTheVideo) {
  auto w = fixed_windows(10.0, 4.0, 0.0);
  ASSERT_EQ(w.size(), 3u);
  EXPECT_DOUBLE_EQ(w[2].start, 8.0);
  EXPECT_DOUBLE_EQ(w[2].end, 10.0);
  w = fixed_windows(10.0, 4.0, 3.0);  // 0-4 3-7 6-10
  ASSERT_EQ(w.size(), 3u);
  EXPECT_DOUBLE_EQ(w[2].end, 10.0);
  w = fixed_windows(2.0, 5.0, 0.0);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_DOUBLE_EQ(w[0].end, 2.0);
  EXPECT_THROW(fixed_windows(2.0, 0.0, 0.0), Error);
}

TEST(TagInputs, FoldersGlobsListsAndMissing) {
  TempDir d("tag_inputs");
  fs::create_directories(d.path / "a" / "b");
  for (const char* f : {"a/x.mp4", "a/b/y.mkv", "a/notes.txt", "z.webm"})
    std::ofstream(d.path / f) << "x";
  const auto folder = resolve_tag_inputs({(d.path / "a").string()});
  ASSERT_EQ(folder.size(), 2u);
  EXPECT_EQ(folder[0], (d.path / "a/b/y.mkv").string());
  const auto globbed = resolve_tag_inputs({(d.path / "*.webm").string()});
  ASSERT_EQ(globbed.size(), 1u);
  std::ofstream(d.path / "v.list") << "a/x.mp4 3\nz.webm 1\n";
  const auto listed =
      resolve_tag_inputs({(d.path / "v.list").string(), (d.path / "z.webm").string()});
  ASSERT_EQ(listed.size(), 2u);  // z.webm once
  EXPECT_EQ(listed[0], (d.path / "a/x.mp4").string());
  EXPECT_THROW(resolve_tag_inputs({(d.path / "nothing").string()}), Error);
  EXPECT_THROW(resolve_tag_inputs({(d.path / "*.avi").string()}), Error);
}

}  // namespace
