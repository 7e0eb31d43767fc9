#include "engine/train/trainer.h"

#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <fcntl.h>
#include <unistd.h>

#include "engine/autograd/autocast.h"
#include "engine/autograd/grad_mode.h"
#include "engine/dist/process_group.h"
#include "engine/dist/reducer.h"
#include "engine/io/atomic_file.h"
#include "engine/io/safetensors.h"
#include "engine/nn/module.h"
#include "engine/ops/binary.h"
#include "engine/ops/matmul.h"
#include "engine/optim/clip.h"
#include "engine/optim/optimizer.h"
#include "engine/optim/schedule.h"
#include "engine/train/device_batches.h"
#include "engine/train/event_writer.h"
#include "engine/train/progress.h"

namespace fs = std::filesystem;

namespace oar {

namespace {

std::atomic<int> g_signal{0};
void on_signal(int sig) {
  g_signal.store(sig);
}

// Installs SIGINT/SIGTERM handlers for the scope of a fit and restores the old ones.
class SignalScope {
 public:
  SignalScope() {
    g_signal.store(0);
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~SignalScope() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }

 private:
  struct sigaction old_int_ {
  }, old_term_{};
};

std::string fmt(double v, int prec = 4) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", prec, v);
  return b;
}

int64_t step_of(const fs::path& p) {
  const std::string n = p.filename().string();
  if (n.rfind("step-", 0) != 0) return -1;
  try {
    return std::stoll(n.substr(5));
  } catch (...) {
    return -1;
  }
}

void fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// Publishes a fully written temporary directory under its final name.
void publish_dir(const fs::path& tmp, const fs::path& final_dir) {
  std::error_code ec;
  if (fs::exists(final_dir)) {
    fs::path old = final_dir;
    old += ".old";
    fs::remove_all(old, ec);
    fs::rename(final_dir, old);
    fs::rename(tmp, final_dir);
    fs::remove_all(old, ec);
  } else {
    fs::rename(tmp, final_dir);
  }
  fsync_dir(final_dir.parent_path());
}

Json state_json(int64_t epoch, int64_t batch_in_epoch, int64_t step, GeneratorState rng,
                bool has_best, double best_value, int64_t best_step, int64_t stale,
                const std::string& best_name) {
  Json j = Json::object();
  j["format"] = "oar-checkpoint-1";
  j["epoch"] = epoch;
  j["batch_in_epoch"] = batch_in_epoch;
  j["step"] = step;
  Json r = Json::object();
  // Stored as strings: JSON numbers cannot hold every uint64.
  r["seed"] = std::to_string(rng.seed);
  r["offset"] = std::to_string(rng.offset);
  j["rng"] = r;
  Json b = Json::object();
  b["metric"] = best_name;
  b["has_value"] = has_best;
  b["value"] = best_value;
  b["step"] = best_step;
  b["evals_without_improvement"] = stale;
  j["best"] = b;
  return j;
}

}  // namespace

double EvalResult::get(const std::string& name) const {
  std::string known;
  for (const auto& [k, v] : values) {
    if (k == name) return v;
    known += (known.empty() ? "" : ", ") + k;
  }
  OAR_FAIL("metric '", name, "' was not reported (reported: ", known, ")");
}

struct Trainer::Logs {
  std::unique_ptr<EventWriter> events;
  int fd = -1;
  ~Logs() {
    if (fd >= 0) ::close(fd);
  }
};

Trainer::Trainer(Task& task, optim::Optimizer& optimizer, const optim::LrSchedule* schedule,
                 BatchSource& train, BatchSource* valid, TrainerOptions options,
                 std::string resolved_config_yaml)
    : task_(task),
      opt_(optimizer),
      schedule_(schedule),
      train_(train),
      valid_(valid),
      o_(std::move(options)),
      config_yaml_(std::move(resolved_config_yaml)),
      gen_(o_.seed) {
  OAR_CHECK(o_.grad_accum >= 1, "trainer.grad_accum must be at least 1");
  OAR_CHECK(o_.epochs >= 1 || o_.max_steps >= 1, "trainer: set epochs or max_steps");
  OAR_CHECK(!o_.output_dir.empty(), "trainer: no output directory");
  OAR_CHECK(!(o_.bf16 && o_.fp16), "trainer: bf16 and fp16 are both on; choose one");
  best_name_ = o_.best_metric;
  device_ = module_device(task_.model());
  for (const auto& [name, t] : task_.model().state_dict())
    OAR_CHECK(t.device() == device_, "trainer: the model is on several devices (", name, " is on ",
              t.device().str(), ", the first parameter on ", device_.str(),
              "); move it with Module::to");
  opt_.to(device_);  // state restored or created elsewhere follows the model
  if (o_.fp16) scaler_ = std::make_unique<GradScaler>(o_.loss_scale);
}

Trainer::~Trainer() = default;

std::string Trainer::latest_checkpoint(const std::string& run_dir) {
  const fs::path ck = fs::path(run_dir) / "ckpt";
  std::error_code ec;
  if (!fs::is_directory(ck, ec)) return "";
  int64_t best = -1;
  fs::path found;
  for (const auto& e : fs::directory_iterator(ck, ec)) {
    const int64_t s = step_of(e.path());
    if (s > best && fs::exists(e.path() / "state.json") &&
        fs::exists(e.path() / "model.safetensors")) {
      best = s;
      found = e.path();
    }
  }
  return found.string();
}

bool Trainer::is_rank0() const {
  return !group_ || group_->rank() == 0;
}

void Trainer::sync_model_from_rank0() {
  NoGradGuard no_grad;
  for (auto& [name, t] : task_.model().state_dict()) {
    Tensor x = t;
    if (x.is_contiguous()) {
      group_->broadcast(x, 0);
    } else {
      Tensor c = x.contiguous();
      group_->broadcast(c, 0);
      x.copy_(c);
    }
  }
}

double Trainer::mean_over_ranks(double v) {
  if (!group_) return v;
  return group_->sum_doubles({v})[0] / group_->size();
}

void Trainer::log_record(Json record) {
  const std::string line = record.dump() + "\n";
  if (logs_ && logs_->fd >= 0) {
    // One write() per complete line with O_APPEND: a crash never leaves half a record.
    const ssize_t w = ::write(logs_->fd, line.data(), line.size());
    (void)w;
  }
}

bool Trainer::improved(double v) const {
  if (!st_.has_best) return true;
  return o_.best_max ? v > st_.best_value : v < st_.best_value;
}

void Trainer::save_checkpoint(bool also_best) {
  if (!is_rank0()) return;
  const fs::path run(o_.output_dir);
  const fs::path ck = run / "ckpt";
  fs::create_directories(ck);
  const std::string name = "step-" + std::to_string(st_.step);
  const fs::path tmp = ck / (".tmp-" + name);
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp);
  st_.rng = gen_.state();
  io::write_safetensors((tmp / "model.safetensors").string(), task_.model().state_dict(),
                        {{"format", "oar"}, {"step", std::to_string(st_.step)}});
  io::write_safetensors((tmp / "optim.safetensors").string(), opt_.state_tensors(),
                        {{"optimizer", opt_.name()}});
  io::write_file_atomic((tmp / "config.yaml").string(), config_yaml_);
  Json state = state_json(st_.epoch, st_.batch_in_epoch, st_.step, st_.rng, st_.has_best,
                          st_.best_value, st_.best_step, st_.evals_without_improvement, best_name_);
  if (scaler_) state["loss_scale"] = scaler_->state();
  // state.json last: a checkpoint without it is incomplete and never resumed from.
  io::write_file_atomic((tmp / "state.json").string(), state.dump(2) + "\n");
  fsync_dir(tmp);
  publish_dir(tmp, ck / name);
  if (also_best) {
    const fs::path btmp = run / ".tmp-best";
    fs::remove_all(btmp, ec);
    fs::create_directories(btmp);
    for (const char* f : {"model.safetensors", "config.yaml", "state.json"})
      fs::copy_file(ck / name / f, btmp / f, fs::copy_options::overwrite_existing);
    fsync_dir(btmp);
    publish_dir(btmp, run / "best");
  }
  prune_checkpoints();
}

void Trainer::prune_checkpoints() {
  const fs::path ck = fs::path(o_.output_dir) / "ckpt";
  std::vector<std::pair<int64_t, fs::path>> all;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(ck, ec)) {
    const int64_t s = step_of(e.path());
    if (s >= 0 && fs::exists(e.path() / "state.json")) all.emplace_back(s, e.path());
  }
  std::sort(all.begin(), all.end());
  const int64_t keep = std::max<int64_t>(1, o_.keep_last);
  for (int64_t i = 0; i + keep < static_cast<int64_t>(all.size()); ++i)
    fs::remove_all(all[i].second, ec);
}

void Trainer::load_checkpoint(const std::string& dir) {
  const fs::path d(dir);
  OAR_CHECK(fs::exists(d / "state.json"), dir, ": not a complete checkpoint (no state.json)");
  std::ifstream in(d / "state.json");
  std::stringstream ss;
  ss << in.rdbuf();
  const Json j = Json::parse(ss.str(), (d / "state.json").string());
  st_.epoch = j.at("epoch").as_int();
  st_.batch_in_epoch = j.at("batch_in_epoch").as_int();
  st_.step = j.at("step").as_int();
  st_.rng.seed = std::stoull(j.at("rng").at("seed").as_string());
  st_.rng.offset = std::stoull(j.at("rng").at("offset").as_string());
  gen_.set_state(st_.rng);
  const Json& b = j.at("best");
  st_.has_best = b.at("has_value").as_bool();
  st_.best_value = b.at("value").as_double();
  st_.best_step = b.at("step").as_int();
  st_.evals_without_improvement = b.at("evals_without_improvement").as_int();
  if (best_name_.empty()) best_name_ = b.at("metric").as_string();
  // A run resumed with fp16 from a checkpoint without a scale starts from the initial scale.
  if (scaler_)
    if (const Json* ls = j.find("loss_scale"))
      scaler_->load_state(*ls, (d / "state.json").string());
  // Tensors are read onto the CPU and copied to the model's device by the loaders below.
  auto model = io::read_safetensors((d / "model.safetensors").string());
  task_.model().load_state_dict(model.as_map(), true);
  auto optim = io::read_safetensors((d / "optim.safetensors").string());
  opt_.load_state(optim.as_map());
}

EvalResult Trainer::evaluate(BatchSource& source, const std::string& artifacts_dir) {
  NoGradGuard no_grad;
  AutocastGuard ac(o_.bf16 || o_.fp16, o_.fp16 ? DType::f16 : DType::bf16);
  nn::Module& model = task_.model();
  const bool was_training = model.is_training();
  model.eval();
  auto metrics = task_.metrics();
  for (auto& m : metrics) m->reset();
  DeviceBatches on_device(source, device_);
  on_device.start_epoch(0, 0);
  Progress bar("eval", source.num_batches(),
               is_rank0() ? std::max<int64_t>(1, source.num_batches() / 4) : INT64_MAX / 2,
               o_.plain_progress || !is_rank0());
  double loss_sum = 0, n = 0;
  int64_t done = 0, samples = 0;
  Batch batch;
  while (on_device.next(batch)) {
    Outputs out = task_.forward(batch);
    if (batch.has("label") || !metrics.empty()) {
      const Tensor l = task_.loss(out, batch);
      loss_sum += l.item<double>() * static_cast<double>(batch.size);
      n += static_cast<double>(batch.size);
    }
    if (!metrics.empty()) {
      // Metrics count on the CPU: they read the host batch and CPU copies of the outputs.
      const Outputs host_out = device_.is_cpu() ? out : to_host(out);
      for (auto& m : metrics) m->update(host_out, on_device.host());
    }
    samples += batch.size;
    bar.update(++done, samples, "");
  }
  if (group_) {
    // Each rank saw its shard: sum the loss and every metric's sufficient statistics.
    std::vector<double> all{loss_sum, n};
    std::vector<size_t> sizes;
    for (auto& m : metrics) {
      const std::vector<double> st = m->state();
      sizes.push_back(st.size());
      all.insert(all.end(), st.begin(), st.end());
    }
    all = group_->sum_doubles(all);
    loss_sum = all[0];
    n = all[1];
    size_t at = 2;
    for (size_t i = 0; i < metrics.size(); ++i) {
      metrics[i]->load_state(
          std::vector<double>(all.begin() + static_cast<std::ptrdiff_t>(at),
                              all.begin() + static_cast<std::ptrdiff_t>(at + sizes[i])));
      at += sizes[i];
    }
  }
  EvalResult r;
  r.values.emplace_back("loss", n > 0 ? loss_sum / n : 0.0);
  for (auto& m : metrics)
    for (auto& kv : m->compute()) r.values.push_back(kv);
  if (!artifacts_dir.empty() && is_rank0())
    for (auto& m : metrics) m->write_artifacts(artifacts_dir);
  std::string status;
  for (const auto& [k, v] : r.values) status += k + " " + fmt(v) + "  ";
  bar.finish(status);
  model.train(was_training);
  // Training resumes: its next step writes the weights, so the packed copies made for this
  // evaluation would only hold memory until the next one.
  if (was_training) release_packed_linear_weights();
  return r;
}

FitResult Trainer::fit(const std::string& resume) {
  const fs::path run(o_.output_dir);
  std::error_code ec;
  fs::create_directories(run, ec);
  OAR_CHECK(!ec && fs::is_directory(run), o_.output_dir, ": cannot create the output directory (",
            ec.message(), ")");
  {
    const fs::path probe = run / ".write-test";
    std::ofstream t(probe);
    OAR_CHECK(t.good(), o_.output_dir, ": output directory is not writable");
    t.close();
    fs::remove(probe, ec);
  }
  std::string from = resume;
  if (resume == "auto") from = latest_checkpoint(o_.output_dir);
  // Rank 0's choice is everyone's: a checkpoint published between two ranks' looks is not.
  if (group_) from = group_->broadcast_string(from);
  if (!from.empty()) {
    load_checkpoint(from);
    std::fprintf(stderr, "resuming from %s (epoch %ld, step %ld)\n", from.c_str(),
                 static_cast<long>(st_.epoch), static_cast<long>(st_.step));
  }
  logs_ = std::make_unique<Logs>();
  if (is_rank0()) {
    io::write_file_atomic((run / "config.yaml").string(), config_yaml_);
    logs_->fd = ::open((run / "metrics.jsonl").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    OAR_CHECK(logs_->fd >= 0, (run / "metrics.jsonl").string(), ": cannot open for writing");
    logs_->events = std::make_unique<EventWriter>(run.string());
  }

  nn::Module& model = task_.model();
  model.set_generator(&gen_);
  model.train();
  if (group_) {
    sync_model_from_rank0();
    reducer_ = std::make_unique<dist::GradReducer>(model.parameters(), group_->new_group("grads"),
                                                   o_.distributed.bucket_mb);
  }
  SignalScope signals;
  FitResult result;

  const int64_t per_epoch = train_.num_batches();
  OAR_CHECK(per_epoch > 0, "trainer: the training data yields no batch (", train_.num_samples(),
            " samples)");
  const int64_t steps_per_epoch = (per_epoch + o_.grad_accum - 1) / o_.grad_accum;
  const int64_t epochs =
      o_.max_steps > 0 ? (o_.max_steps + steps_per_epoch - 1) / steps_per_epoch : o_.epochs;

  auto run_eval = [&](int64_t epoch) {
    if (!valid_) return false;
    EvalResult r = evaluate(*valid_, run.string());
    result.last_eval = r;
    if (best_name_.empty()) best_name_ = r.values.size() > 1 ? r.values[1].first : "loss";
    const double v = r.get(best_name_);
    Json rec = Json::object();
    rec["phase"] = "valid";
    rec["step"] = st_.step;
    rec["epoch"] = epoch;
    for (const auto& [k, val] : r.values) {
      rec[k] = val;
      if (logs_->events) logs_->events->scalar("valid/" + k, val, st_.step);
    }
    log_record(rec);
    if (logs_->events) logs_->events->flush();
    const bool better = improved(v);
    if (better) {
      st_.has_best = true;
      st_.best_value = v;
      st_.best_step = st_.step;
      st_.evals_without_improvement = 0;
    } else {
      ++st_.evals_without_improvement;
    }
    return better;
  };

  Batch batch;
  int64_t micro = 0;
  double loss_acc = 0, last_logged_loss = 0;
  int64_t loss_n = 0, samples_since_log = 0;
  bool stop = false;
  auto t_log = std::chrono::steady_clock::now();

  // Batches reach the model's device one step ahead (pinned memory and a copy stream on CUDA).
  DeviceBatches train_batches(train_, device_);
  for (int64_t epoch = st_.epoch; epoch < epochs && !stop; ++epoch) {
    train_batches.start_epoch(epoch, st_.batch_in_epoch);
    Progress bar("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(epochs), per_epoch,
                 is_rank0() ? o_.log_every * o_.grad_accum : INT64_MAX / 2,
                 o_.plain_progress || !is_rank0());
    int64_t samples = 0;
    while (!stop && train_batches.next(batch)) {
      ++st_.batch_in_epoch;
      Tensor loss;
      {
        AutocastGuard ac(o_.bf16 || o_.fp16, o_.fp16 ? DType::f16 : DType::bf16);
        Outputs out = task_.forward(batch);
        loss = task_.loss(out, batch);
      }
      const double lv = loss.item<double>();
      if (!std::isfinite(lv)) {
        const std::string last = latest_checkpoint(o_.output_dir);
        throw DivergedError(
            detail::concat("loss is ", lv, " at step ", st_.step + 1, " (epoch ", epoch + 1,
                           ", batch ", st_.batch_in_epoch, "); stopped. ",
                           last.empty() ? std::string("No checkpoint was written yet.")
                                        : "Last good checkpoint: " + last));
      }
      // Gradients are averaged over ranks only on the batch that completes an optimizer step.
      if (reducer_)
        reducer_->prepare(micro + 1 >= o_.grad_accum || st_.batch_in_epoch == per_epoch);
      {
        Tensor l = o_.grad_accum > 1 ? div(loss, static_cast<double>(o_.grad_accum)) : loss;
        (scaler_ ? scaler_->scale_loss(l) : l).backward();
      }
      loss_acc += lv;
      ++loss_n;
      samples += batch.size;
      samples_since_log += batch.size;
      ++micro;
      const bool epoch_end = st_.batch_in_epoch == per_epoch;
      if (micro < o_.grad_accum && !epoch_end) continue;
      micro = 0;
      if (reducer_) reducer_->finish();
      const double lr = schedule_ ? schedule_->lr(st_.step) : opt_.lr();
      if (schedule_) opt_.set_lr(lr);
      double gnorm = 0;
      // fp16: gradients are unscaled before clipping; a step with inf/NaN gradients is skipped
      // and the scale halves (GradScaler).
      const bool finite = scaler_ ? scaler_->unscale_(model.parameters()) : true;
      if (o_.clip_grad_norm > 0 && finite)
        gnorm = optim::clip_grad_norm(model.parameters(), o_.clip_grad_norm);
      if (finite) opt_.step();
      if (scaler_) scaler_->update();
      opt_.zero_grad(/*set_to_none=*/true);  // as PyTorch: the next backward writes, not adds
      ++st_.step;
      bar.update(st_.batch_in_epoch, samples,
                 "loss " + fmt(loss_acc / std::max<int64_t>(1, loss_n)));
      if (st_.step % o_.log_every == 0 || epoch_end) {
        if (group_) loss_acc = mean_over_ranks(loss_acc);
        const double el =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t_log).count();
        Json rec = Json::object();
        rec["phase"] = "train";
        rec["step"] = st_.step;
        rec["epoch"] = epoch + static_cast<double>(st_.batch_in_epoch) / per_epoch;
        rec["loss"] = loss_acc / std::max<int64_t>(1, loss_n);
        rec["lr"] = lr;
        if (o_.clip_grad_norm > 0) rec["grad_norm"] = gnorm;
        if (scaler_) {
          rec["loss_scale"] = scaler_->scale();
          rec["skipped_steps"] = scaler_->skipped_steps();
        }
        rec["samples_per_s"] =
            el > 0 ? samples_since_log * (group_ ? group_->size() : 1) / el : 0.0;
        log_record(rec);
        if (logs_->events)
          logs_->events->scalar("train/loss", loss_acc / std::max<int64_t>(1, loss_n), st_.step);
        if (logs_->events) logs_->events->scalar("train/lr", lr, st_.step);
        last_logged_loss = loss_acc / std::max<int64_t>(1, loss_n);
        loss_acc = 0;
        loss_n = 0;
        samples_since_log = 0;
        t_log = std::chrono::steady_clock::now();
      }
      if (epoch_end) {
        ++st_.epoch;
        st_.batch_in_epoch = 0;
      }
      const bool step_limit = o_.max_steps > 0 && st_.step >= o_.max_steps;
      const bool eval_now =
          (o_.eval_every_steps > 0 && st_.step % o_.eval_every_steps == 0) ||
          (epoch_end && o_.eval_every_epochs > 0 && (epoch + 1) % o_.eval_every_epochs == 0) ||
          (step_limit && valid_);
      bool saved = false;
      if (eval_now) {
        const bool better = run_eval(epoch + 1);
        save_checkpoint(better);
        saved = true;
        if (o_.early_stopping_patience > 0 &&
            st_.evals_without_improvement >= o_.early_stopping_patience) {
          std::fprintf(stderr, "early stopping: %s did not improve for %ld evaluations\n",
                       best_name_.c_str(), static_cast<long>(st_.evals_without_improvement));
          result.early_stopped = true;
          stop = true;
        }
      }
      if (!saved && (epoch_end || step_limit ||
                     (o_.save_every_steps > 0 && st_.step % o_.save_every_steps == 0))) {
        save_checkpoint(false);
        saved = true;
      }
      if (step_limit) stop = true;
      if (group_) {
        // Stop together: a signal seen by one rank stops every rank after the same step.
        int sig = g_signal.load();
        if (group_->backend() == "gloo") {
          Tensor t = full({1}, static_cast<double>(sig), DType::i32);
          group_->allreduce(t);
          sig = t.data<int32_t>()[0];
        } else {
          sig = static_cast<int>(group_->sum_doubles({static_cast<double>(sig)})[0]);
        }
        if (sig != 0 && g_signal.load() == 0) g_signal.store(SIGTERM);
      }
      if (g_signal.load() != 0) {
        if (!saved) save_checkpoint(false);
        result.interrupted_by = g_signal.load();
        std::fprintf(stderr, "\nstopped by signal %d at step %ld; checkpoint written to %s\n",
                     result.interrupted_by, static_cast<long>(st_.step),
                     latest_checkpoint(o_.output_dir).c_str());
        stop = true;
      }
    }
    if (!result.interrupted_by)
      bar.finish("loss " + fmt(loss_n ? loss_acc / loss_n : last_logged_loss));
    result.epochs_completed = st_.epoch;
  }
  if (group_) {
    reducer_.reset();
    group_->barrier();  // rank 0 hosts the store: it leaves last
  }
  if (logs_->events) logs_->events->flush();
  result.steps = st_.step;
  result.best_metric = best_name_;
  result.best_value = st_.best_value;
  result.has_best = st_.has_best;
  result.last_checkpoint = latest_checkpoint(o_.output_dir);
  model.set_generator(nullptr);
  return result;
}

int64_t predict_to_file(Task& task, BatchSource& source, const std::string& jsonl_path, bool bf16,
                        bool plain_progress, bool fp16) {
  OAR_CHECK(!(bf16 && fp16), "predict: bf16 and fp16 are both on; choose one");
  NoGradGuard no_grad;
  AutocastGuard ac(bf16 || fp16, fp16 ? DType::f16 : DType::bf16);
  task.model().eval();
  const Device device = module_device(task.model());
  DeviceBatches on_device(source, device);
  on_device.start_epoch(0, 0);
  io::AtomicWriter out(jsonl_path);
  Progress bar("predict", source.num_batches(), std::max<int64_t>(1, source.num_batches() / 4),
               plain_progress);
  int64_t n = 0, done = 0;
  Batch batch;
  while (on_device.next(batch)) {
    Outputs o = task.forward(batch);
    // Post-processing reads the outputs on the CPU, with the host batch's labels and metadata.
    const Outputs host_out = device.is_cpu() ? o : to_host(o);
    for (const Json& rec : task.predict(host_out, on_device.host())) {
      out.write(rec.dump() + "\n");
      ++n;
    }
    bar.update(++done, n, "");
  }
  out.commit();
  bar.finish(std::to_string(n) + " records -> " + jsonl_path);
  return n;
}

}  // namespace oar
