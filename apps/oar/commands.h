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

struct LaunchOptions {
  int nproc_per_node = 1;
  int nnodes = 1;
  int node_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 0;  // 0: a free port (one node only)
  int max_restarts = 0;
  double grace_s = 10.0;  // after one worker fails, how long the others get before SIGKILL
  std::vector<std::string> command;
};

class Commands {
 public:
  void add_to(CLI::App& app);
  int run() { return action_ ? action_() : 0; }

 private:
  void add_run_options(CLI::App* c, bool training);
  RunOptions o_;
  LaunchOptions launch_;
  double rtol_ = 1e-5;
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
int cmd_launch(const LaunchOptions& o);
int cmd_compare_weights(const std::string& a, const std::string& b, double rtol);

// `oar video` (video_cmd.cpp): makes the group and adds `probe`; other video tools add their
// subcommands to app.get_subcommand("video") after it.
void add_video_commands(CLI::App& app, std::function<int()>& action);

}  // namespace oar::app
