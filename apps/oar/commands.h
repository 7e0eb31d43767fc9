#pragma once
// The subcommands of `oar` and their options.
#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace oar::app {

struct RunOptions {
  std::string config;
  std::vector<std::string> overrides;
  std::string device = "cpu";
  int threads = 0;
  std::string output;
  std::string resume;
  int64_t seed = -1;
  bool plain = false;
  std::string checkpoint;
  std::string split;
  std::vector<std::string> inputs;
  int show = 5;
};

class Commands {
 public:
  void add_to(CLI::App& app);
  int run() { return action_ ? action_() : 0; }

 private:
  void add_run_options(CLI::App* c, bool training);
  RunOptions o_;
  std::string file_a_, file_b_, kind_, name_;
  std::vector<std::string> assignments_;
  bool origins_ = false;
  std::function<int()> action_;
};

int cmd_train(const RunOptions& o);
int cmd_eval(const RunOptions& o);
int cmd_predict(const RunOptions& o);
int cmd_config_show(const RunOptions& o, bool origins);
int cmd_config_validate(const RunOptions& o);
int cmd_config_doc(const std::string& name);
int cmd_config_diff(const std::string& a, const std::string& b);
int cmd_config_set(const std::string& file, const std::vector<std::string>& assignments);
int cmd_list(const std::string& kind);
int cmd_model_summary(const RunOptions& o);
int cmd_version();

}  // namespace oar::app
