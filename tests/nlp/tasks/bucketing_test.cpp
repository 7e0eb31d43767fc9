// Batching for the NLP tasks: batches are padded to their longest example (not max_seq_len), and
// length bucketing (data.bucket) groups examples of similar length while keeping every example
// exactly once, in a seeded order.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "engine/core/error.h"
#include "engine/ops.h"
#include "nlp/readers/tsv.h"
#include "readers/dataset.h"

using namespace oar;
using namespace oar::nlp;

namespace {

// 23 examples: "w w ... w" with 1..23 words of one known token, so lengths are 3..25 tokens.
std::shared_ptr<TsvTextDataset> make_dataset(const std::string& dir) {
  std::filesystem::create_directories(dir);
  {
    std::ofstream f(dir + "/a.tsv");
    f << "label\ttext_a\n";
    const int order[] = {5,  17, 1,  23, 9,  12, 3,  20, 7,  14, 2, 19,
                         11, 6,  22, 4,  16, 8,  21, 10, 13, 18, 15};
    for (int words : order) {
      f << (words % 2) << "\t";
      for (int i = 0; i < words; ++i) f << (i ? " the" : "the");
      f << "\n";
    }
  }
  auto tok = std::make_shared<BertTokenizer>(
      BertTokenizer::from_file(std::string(OAR_SOURCE_DIR) + "/tests/nlp/data/minilm_vocab.txt"));
  TsvOptions o;
  o.max_seq_len = 64;
  return std::make_shared<TsvTextDataset>(dir + "/a.tsv", tok, o);
}

// Every batch of one epoch: [words per example], checking each batch is padded to its longest.
std::vector<std::vector<int64_t>> epoch_batches(readers::DataLoader& loader, int64_t epoch) {
  loader.start_epoch(epoch);
  std::vector<std::vector<int64_t>> out;
  Batch b;
  while (loader.next(b)) {
    const Tensor lens = sum(b["attention_mask"], {1});
    const int64_t longest = amax(lens).item<int64_t>();
    EXPECT_EQ(b["input_ids"].size(1), longest);  // dynamic padding
    std::vector<int64_t> words;
    for (int64_t v : lens.to_vector<int64_t>()) words.push_back(v - 2);
    out.push_back(words);
  }
  return out;
}

}  // namespace

TEST(Bucketing, RegroupsByLengthKeepingEveryIndexOnce) {
  std::vector<int64_t> order(23);
  for (int64_t i = 0; i < 23; ++i) order[static_cast<size_t>(i)] = (i * 7) % 23;
  auto length = [](int64_t i) { return (i * 5) % 11; };
  const auto a = readers::bucket_by_length(order, length, 4, 2, 1, 0);
  std::vector<int64_t> sorted_a = a, sorted_o = order;
  std::sort(sorted_a.begin(), sorted_a.end());
  std::sort(sorted_o.begin(), sorted_o.end());
  EXPECT_EQ(sorted_a, sorted_o);  // a permutation: each index exactly once
  // Seeded: the same (seed, epoch) gives the same order; another epoch or seed another.
  EXPECT_EQ(a, readers::bucket_by_length(order, length, 4, 2, 1, 0));
  EXPECT_NE(a, readers::bucket_by_length(order, length, 4, 2, 1, 1));
  EXPECT_NE(a, readers::bucket_by_length(order, length, 4, 2, 2, 0));
  // Each full batch comes from one window of 8, sorted longest first; the 3 left over stay last.
  for (size_t b = 0; b + 4 <= 20; b += 4)
    for (size_t i = b + 1; i < b + 4; ++i) EXPECT_GE(length(a[i - 1]), length(a[i]));
  std::vector<int64_t> tail(a.end() - 3, a.end()), window_tail(order.end() - 7, order.end());
  for (int64_t t : tail)
    EXPECT_NE(std::find(window_tail.begin(), window_tail.end(), t), window_tail.end());
  // One window covering everything: batches are consecutive length ranges.
  const auto whole = readers::bucket_by_length(order, length, 4, 100, 1, 0);
  std::vector<int64_t> lens;
  for (int64_t i : whole) lens.push_back(length(i));
  std::vector<int64_t> full(lens.begin(), lens.end() - 3), tail_lens(lens.end() - 3, lens.end());
  EXPECT_LE(*std::max_element(tail_lens.begin(), tail_lens.end()),
            *std::min_element(full.begin(), full.end()));
  EXPECT_THROW(readers::bucket_by_length(order, length, 0, 2, 1, 0), Error);
}

TEST(Bucketing, LoaderBatchesPadToTheLongestAndBucketSeeded) {
  const std::string dir = std::filesystem::temp_directory_path() / "oar_bucketing_test";
  auto ds = make_dataset(dir);
  ASSERT_EQ(ds->size(), 23);
  EXPECT_EQ(ds->length(0), 7);  // [CLS] + 5 words + [SEP]
  readers::LoaderOptions o;
  o.batch_size = 4;
  o.shuffle = true;
  o.num_workers = 0;
  o.seed = 3;
  readers::DataLoader plain(ds, o);
  const auto unbucketed = epoch_batches(plain, 0);
  o.bucket = 3;
  readers::DataLoader bucketed(ds, o), again(ds, o);
  const auto b0 = epoch_batches(bucketed, 0);
  EXPECT_EQ(b0, epoch_batches(again, 0));  // seeded
  EXPECT_NE(b0, epoch_batches(again, 1));  // a new order each epoch
  std::multiset<int64_t> seen;
  int64_t spread_bucketed = 0, spread_plain = 0;
  for (const auto& b : b0) {
    seen.insert(b.begin(), b.end());
    spread_bucketed +=
        *std::max_element(b.begin(), b.end()) - *std::min_element(b.begin(), b.end());
  }
  for (const auto& b : unbucketed)
    spread_plain += *std::max_element(b.begin(), b.end()) - *std::min_element(b.begin(), b.end());
  std::multiset<int64_t> all;
  for (int64_t w = 1; w <= 23; ++w) all.insert(w);
  EXPECT_EQ(seen, all);  // every example exactly once
  ASSERT_EQ(b0.size(), 6u);
  EXPECT_EQ(b0.back().size(), 3u);           // the incomplete batch stays last
  EXPECT_LT(spread_bucketed, spread_plain);  // less padding
  // Not shuffling (evaluation): bucketing leaves the file order alone.
  o.shuffle = false;
  readers::DataLoader eval(ds, o);
  EXPECT_EQ(epoch_batches(eval, 0).front(), (std::vector<int64_t>{5, 17, 1, 23}));
  std::filesystem::remove_all(dir);
}

TEST(Bucketing, NeedsLengths) {
  struct NoLengths : readers::Dataset {
    int64_t size() const override { return 2; }
    readers::Example get(int64_t, Generator&) const override { return {}; }
  };
  readers::LoaderOptions o;
  o.bucket = 2;
  EXPECT_THROW(readers::DataLoader(std::make_shared<NoLengths>(), o), Error);
  o.bucket = 0;
  EXPECT_NO_THROW(readers::DataLoader(std::make_shared<NoLengths>(), o));
}
