#include "apps/oar/commands.h"

#include "apps/oar/text_cmd.h"
#ifdef OAR_HAVE_VIDEO
#include "apps/oar/video_synth_cmd.h"
#include "apps/oar/video_tag_cmd.h"
#endif

namespace oar::app {

void Commands::add_run_options(CLI::App* c, bool training) {
  c->add_option("-c,--config", o_.config, "config file, run directory or checkpoint directory")
      ->required();
  c->add_option("-o,--override", o_.overrides, "override a config key: -o a.b.c=value (repeatable)")
      ->take_all();
  c->add_option("--device", o_.device, "cpu or cuda:N")->default_val("cpu");
  c->add_option("--threads", o_.threads, "CPU threads (default: trainer.threads, else all cores)");
  c->add_option("--output", o_.output,
                "run directory (default: trainer.output_dir or runs/<config>)");
  c->add_option("--seed", o_.seed, "seed (overrides trainer.seed)");
  c->add_flag("--plain", o_.plain, "plain log lines instead of a progress bar");
  if (training) {
    c->add_option("--resume", o_.resume,
                  "continue from a checkpoint directory, or 'auto' for the newest");
  } else {
    c->add_option("--checkpoint", o_.checkpoint,
                  "weights: a checkpoint directory or .safetensors file");
  }
}

void Commands::add_to(CLI::App& app) {
  auto* train = app.add_subcommand("train", "train a model from a config");
  add_run_options(train, true);
  train->callback([this] { action_ = [this] { return cmd_train(o_); }; });

  auto* ev = app.add_subcommand("eval",
                                "evaluate a trained model; prints a metrics table and writes JSON");
  add_run_options(ev, false);
  ev->add_option("--split", o_.split,
                 "data section to evaluate: test (default when present) or valid");
  ev->callback([this] { action_ = [this] { return cmd_eval(o_); }; });

  auto* pr = app.add_subcommand("predict",
                                "predict with a trained model; writes JSON lines, one per input");
  add_run_options(pr, false);
  pr->add_option("--input", o_.inputs, "input file(s) (default: data.infer)");
  pr->add_option("--show", o_.show, "records to print (default 5)");
  pr->callback([this] { action_ = [this] { return cmd_predict(o_); }; });

  auto* cfg = app.add_subcommand("config", "show, validate, document, compare and edit configs");
  cfg->require_subcommand(1);
  auto* show = cfg->add_subcommand("show", "print the fully resolved config");
  show->add_option("-c,--config", o_.config, "config file or run directory")->required();
  show->add_option("-o,--override", o_.overrides, "override a key: -o a.b=value")->take_all();
  show->add_flag("--origins", origins_, "note where each value came from");
  show->callback([this] { action_ = [this] { return cmd_config_show(o_, origins_); }; });
  auto* val = cfg->add_subcommand("validate", "check a config against every component's keys");
  val->add_option("-c,--config", o_.config, "config file")->required();
  val->add_option("-o,--override", o_.overrides, "override a key: -o a.b=value")->take_all();
  val->callback([this] { action_ = [this] { return cmd_config_validate(o_); }; });
  auto* doc =
      cfg->add_subcommand("doc", "the keys a component takes (all components without a name)");
  doc->add_option("component", name_, "e.g. simple_cnn, adamw, trainer");
  doc->callback([this] { action_ = [this] { return cmd_config_doc(name_); }; });
  auto* diff = cfg->add_subcommand("diff", "key-by-key differences of two resolved configs");
  diff->add_option("a", file_a_, "first config")->required();
  diff->add_option("b", file_b_, "second config")->required();
  diff->callback([this] { action_ = [this] { return cmd_config_diff(file_a_, file_b_); }; });
  auto* set =
      cfg->add_subcommand("set", "edit keys of a YAML file in place, keeping comments and layout");
  set->add_option("file", file_a_, "the YAML file")->required();
  set->add_option("assignments", assignments_, "key=value (dotted keys, list indices a.b[1])")
      ->required();
  set->callback([this] { action_ = [this] { return cmd_config_set(file_a_, assignments_); }; });

  auto* list = app.add_subcommand("list", "registered components");
  list->add_option(
      "kind", kind_,
      "models|readers|transforms|metrics|optimizers|schedules|tasks (all when omitted)");
  list->callback([this] { action_ = [this] { return cmd_list(kind_); }; });

  auto* model = app.add_subcommand("model", "inspect models");
  model->require_subcommand(1);
  auto* summary = model->add_subcommand(
      "summary", "layers, output shapes and parameter counts for a config's input");
  summary->add_option("-c,--config", o_.config, "config file or run directory")->required();
  summary->add_option("-o,--override", o_.overrides, "override a key")->take_all();
  summary->callback([this] { action_ = [this] { return cmd_model_summary(o_); }; });

  auto* launch = app.add_subcommand("launch",
                                    "start distributed workers on this node: oar launch "
                                    "--nproc_per_node N -- oar train -c CONFIG");
  launch->add_option("--nproc_per_node", launch_.nproc_per_node, "workers on this node")
      ->default_val(1);
  launch->add_option("--nnodes", launch_.nnodes, "nodes in the job")->default_val(1);
  launch->add_option("--node_rank", launch_.node_rank, "this node's index (0: hosts the store)")
      ->default_val(0);
  launch->add_option("--master_addr", launch_.master_addr, "address of node 0")
      ->default_val("127.0.0.1");
  launch->add_option("--master_port", launch_.master_port,
                     "port of rank 0's store (default: a free port, one node only)");
  launch
      ->add_option("--max_restarts", launch_.max_restarts,
                   "restart the group this many times after a failure; it resumes from the "
                   "last checkpoint")
      ->default_val(0);
  launch
      ->add_option("--grace_s", launch_.grace_s,
                   "seconds the other workers get to stop after one fails")
      ->default_val(10.0);
  launch->add_option("command", launch_.command, "the worker command, after --")->required();
  launch->callback([this] { action_ = [this] { return cmd_launch(launch_); }; });

  auto* tools = app.add_subcommand("tools", "small utilities");
  tools->require_subcommand(1);
  auto* cw = tools->add_subcommand(
      "compare-weights",
      "compare two safetensors files (or checkpoint directories) tensor by tensor; exit 1 when "
      "a tensor differs by more than --rtol (||a-b|| / ||b||)");
  cw->add_option("a", file_a_, "first file or checkpoint directory")->required();
  cw->add_option("b", file_b_, "second file or checkpoint directory")->required();
  cw->add_option("--rtol", rtol_, "relative tolerance")->default_val(1e-5);
  cw->callback(
      [this] { action_ = [this] { return cmd_compare_weights(file_a_, file_b_, rtol_); }; });

  add_text_commands(app, action_);
  add_video_commands(app, action_);  // `oar video probe`; further video tools go after it
#ifdef OAR_HAVE_VIDEO
  add_video_synth(app.get_subcommand("video"), action_);
  add_video_tag(app, action_);
#endif

  auto* version =
      app.add_subcommand("version", "version, build options, libraries and CPU features");
  version->callback([this] { action_ = [] { return cmd_version(); }; });
}

}  // namespace oar::app
