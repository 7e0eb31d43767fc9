#include "apps/oar/app.h"

#include <filesystem>
#include <fstream>

#include "engine/config/schema.h"
#include "engine/io/safetensors.h"
#include "engine/train/components.h"
#include "engine/train/trainer.h"
#include "readers/registry.h"
#include "vision/register.h"
#ifdef OAR_HAVE_NLP
#include "nlp/register.h"
#endif
#ifdef OAR_HAVE_VIDEO
#include "video/register.h"
#endif

namespace fs = std::filesystem;

namespace oar::app {

void register_all() {
  register_engine_components();
  readers::register_components();
  vision::register_components();
#ifdef OAR_HAVE_NLP
  nlp::register_components();
#endif
#ifdef OAR_HAVE_VIDEO
  video::register_components();
#endif
}

Source load_source(const std::string& path, const std::vector<std::string>& overrides) {
  Source s;
  fs::path p(path);
  std::error_code ec;
  if (fs::is_directory(p, ec)) {
    if (fs::exists(p / "model.safetensors")) {
      s.checkpoint = p.string();
    } else if (fs::exists(p / "best" / "model.safetensors")) {
      s.checkpoint = (p / "best").string();
    } else {
      s.checkpoint = Trainer::latest_checkpoint(p.string());
    }
    if (s.checkpoint.empty())
      throw ConfigError(path, 0, "", "no checkpoint in this directory",
                        "a run directory with best/ or ckpt/step-N/, or a checkpoint directory");
    s.run_dir = fs::exists(p / "ckpt") || fs::exists(p / "best")
                    ? p.string()
                    : p.parent_path().parent_path().string();
    if (fs::path(s.checkpoint).filename() == "best")
      s.run_dir = fs::path(s.checkpoint).parent_path().string();
    s.config = Config::load(fs::path(s.checkpoint) / "config.yaml", overrides);
  } else {
    s.config = Config::load(p, overrides);
  }
  return s;
}

namespace {
void validate_component(Config& c, const std::string& section, const std::string& kind) {
  if (!c.has(section)) return;
  const std::string name_key = section + ".name";
  if (!c.has(name_key)) {
    std::string known;
    for (const auto& n : registry::names(kind)) known += (known.empty() ? "" : ", ") + n;
    throw c.error(name_key, "missing required key: which " + kind + " to use", "known: " + known);
  }
  const std::string name = c.get<std::string>(name_key);
  auto it = registry::kinds().find(kind);
  std::vector<std::string> known;
  if (it != registry::kinds().end())
    for (const auto& [n, s] : it->second) known.push_back(n);
  if (it == registry::kinds().end() || !it->second.count(name))
    throw unknown_component(kind, name, known, c.origin(name_key), name_key);
  validate(c, section, it->second.at(name), {"name"});
}
}  // namespace

void validate_all(Config& config) {
  validate(config, "", root_schema());
  for (const char* req : {"model", "task"})
    if (!config.has(req))
      throw config.error(req, "missing required section", "every config names a model and a task");
  validate_component(config, "model", "model");
  validate_component(config, "task", "task");
  if (!config.has("optimizer.name"))
    config.set("optimizer.name", YAML::Node("adamw"), Origin{config.file(), 0, 0, "default"});
  validate_component(config, "optimizer", "optimizer");
  if (!config.has("lr.name"))
    config.set("lr.name", YAML::Node("constant"), Origin{config.file(), 0, 0, "default"});
  validate_component(config, "lr", "lr");
  trainer_options(config);
  for (const std::string& mode : Config::mode_names()) {
    if (!readers::has_mode(config, mode)) continue;
    Config m = config.mode("data", mode);
    validate_component(m, "data", "reader");
    // Files named by path keys must exist.
    const Schema& s = registry::schema("reader", m.get<std::string>("data.name"));
    for (const KeySpec& k : s.keys) {
      if (k.type != KeyType::Path) continue;
      const std::string key = "data." + k.key;
      const std::string v = m.get<std::string>(key, "");
      if (!v.empty() && !fs::exists(v)) {
        Origin at = m.location(key);
        throw ConfigError(at, "data." + mode + "." + k.key, "no such file: " + v,
                          "an existing file or directory");
      }
      // Write the resolved (absolute) path back where it was set, so the config saved with a
      // run still finds the file from the run directory.
      for (const std::string& where : {"data." + mode + "." + k.key, key})
        if (!v.empty() && config.has(where)) {
          config.set(where, YAML::Node(v), config.origin(where));
          break;
        }
    }
  }
}

Built build(Config& config, uint64_t seed) {
  Generator init(seed);
  Built b;
  ModelContext ctx{&init};
  b.model = models().create_from(config, "model", ctx);
  b.task = tasks().create_from(config, "task", b.model);
  return b;
}

void load_weights(nn::Module& model, const std::string& path) {
  fs::path p(path);
  if (fs::is_directory(p)) p /= "model.safetensors";
  auto f = io::read_safetensors(p.string());
  model.load_state_dict(f.as_map(), true);
}

void ensure_output_dir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir))
    OAR_FAIL(dir, ": cannot create the output directory (", ec.message(), ")");
  const fs::path probe = fs::path(dir) / ".oar-write-test";
  {
    std::ofstream t(probe);
    if (!t.good()) OAR_FAIL(dir, ": the output directory is not writable");
  }
  fs::remove(probe, ec);
}

std::string default_output_dir(const Config& config) {
  std::string out = config.get<std::string>("trainer.output_dir", "");
  if (!out.empty()) return out;
  return (fs::path("runs") / fs::path(config.file()).stem()).string();
}

}  // namespace oar::app
