// `task.metrics` in configs: the NLP tasks build the metrics a config names from the metric
// registry (chunk_f1 gets the task's tag names), keep their defaults otherwise, and report a bad
// section at start-up.
#include <gtest/gtest.h>

#include "engine/config/config.h"
#include "engine/train/components.h"
#include "metrics/registry.h"
#include "nlp/register.h"
#include "tiny_bert.h"

namespace oar::nlp {
namespace {

std::shared_ptr<Task> task_from(const std::string& yaml) {
  register_components();
  metrics::register_components();
  Config c = Config::from_string(yaml, "t.yaml");
  return tasks().create_from(c, "task", test::tiny_bert());
}

std::vector<std::string> names(const Task& t) {
  std::vector<std::string> out;
  for (const auto& m : t.metrics()) out.push_back(m->name());
  return out;
}

TEST(NamedMetricsTest, ConfigsReplaceTheDefaults) {
  EXPECT_EQ(names(*task_from("task: {name: text_classification}")),
            (std::vector<std::string>{"accuracy"}));
  auto t = task_from(
      "task:\n  name: text_classification\n  metrics: [{name: prf, num_classes: 2}, {name: "
      "accuracy, topk: [1]}]\n");
  EXPECT_EQ(names(*t), (std::vector<std::string>{"prf", "accuracy"}));
  // One section instead of a list; chunk_f1 takes task.labels when it names none.
  auto ner = task_from(
      "task:\n  name: token_classification\n  labels: [B-PER, I-PER, O]\n  metrics: {name: "
      "chunk_f1, scheme: BIO}\n");
  auto m = ner->metrics();
  ASSERT_EQ(m.size(), 1u);
  Batch b;
  b.tensors["word_tags"] = tensor(std::vector<int64_t>{0, 1, 2}, {1, 3});
  m[0]->update({{"word_pred", tensor(std::vector<int64_t>{0, 1, 2}, {1, 3})}}, b);
  EXPECT_DOUBLE_EQ(m[0]->compute()[2].second, 1.0);  // chunk_f1
  EXPECT_EQ(names(*task_from("task: {name: text_matching, metrics: [{name: ranking}]}")),
            (std::vector<std::string>{"ranking"}));
  EXPECT_EQ(names(*task_from("task: {name: masked_lm}")), (std::vector<std::string>{"masked_lm"}));

  EXPECT_THROW(task_from("task:\n  name: token_classification\n  labels: [B-PER, S-PER, O]\n  "
                         "metrics: {name: chunk_f1, scheme: BIO}\n"),
               ConfigError);
  EXPECT_THROW(task_from("task: {name: text_classification, metrics: [{name: prf}]}"),
               ConfigError);  // num_classes missing
  EXPECT_THROW(task_from("task: {name: text_classification, metrics: []}"), ConfigError);
  EXPECT_THROW(task_from("task: {name: text_classification, metrics: [{name: chunk_f2}]}"),
               ConfigError);
}

}  // namespace
}  // namespace oar::nlp
