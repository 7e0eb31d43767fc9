#include "engine/dist/reducer.h"

#include "engine/autograd/grad_mode.h"

namespace oar::dist {

GradReducer::GradReducer(std::vector<Tensor> params, std::unique_ptr<ProcessGroup> group,
                         double bucket_mb)
    : params_(std::move(params)), group_(std::move(group)) {
  const int n = static_cast<int>(params_.size());
  const int64_t cap = std::max<int64_t>(1, static_cast<int64_t>(bucket_mb * 1024 * 1024));
  bucket_of_.assign(n, -1);
  slot_of_.assign(n, -1);
  Bucket cur;
  int64_t bytes = 0;
  auto close = [&] {
    if (cur.params.empty()) return;
    const Tensor& p0 = params_[cur.params[0]];
    cur.buffer = zeros({cur.numel}, p0.dtype(), p0.device());
    buckets_.push_back(std::move(cur));
    cur = Bucket{};
    bytes = 0;
  };
  for (int i = n - 1; i >= 0; --i) {
    const Tensor& p = params_[i];
    if (!cur.params.empty()) {
      const Tensor& p0 = params_[cur.params[0]];
      if (p.dtype() != p0.dtype() || !(p.device() == p0.device()) ||
          bytes + static_cast<int64_t>(p.nbytes()) > cap)
        close();
    }
    bucket_of_[i] = static_cast<int>(buckets_.size());
    slot_of_[i] = static_cast<int>(cur.params.size());
    cur.params.push_back(i);
    cur.offsets.push_back(cur.numel);
    cur.numel += p.numel();
    bytes += static_cast<int64_t>(p.nbytes());
  }
  close();
  count_.assign(n, 0);
  expected_.assign(n, 0);
  copied_.assign(n, 0);
  ready_.assign(buckets_.size(), 0);
  for (int i = 0; i < n; ++i) {
    auto& hooks = params_[i].impl()->grad_hooks;
    hook_index_.push_back(hooks.size());
    hooks.push_back([this, i](TensorImpl&) { on_grad(i); });
  }
  thread_ = std::thread([this] { loop(); });
}

GradReducer::~GradReducer() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& hooks = params_[i].impl()->grad_hooks;
    if (hook_index_[i] < hooks.size())
      hooks.erase(hooks.begin() + static_cast<std::ptrdiff_t>(hook_index_[i]));
  }
}

void GradReducer::prepare(bool sync) {
  armed_ = sync;
  if (!sync) return;
  std::fill(count_.begin(), count_.end(), 0);
  std::fill(copied_.begin(), copied_.end(), 0);
  for (auto& b : buckets_) b.pending = static_cast<int>(b.params.size());
  overrun_ = -1;
  std::lock_guard<std::mutex> l(mu_);
  std::fill(ready_.begin(), ready_.end(), 0);
  next_ = 0;
  active_ = true;
  error_ = nullptr;
}

void GradReducer::copy_in(int i) {
  Bucket& b = buckets_[bucket_of_[i]];
  const Tensor& p = params_[i];
  const int64_t off = b.offsets[slot_of_[i]];
  Tensor dst = b.buffer.slice(0, off, off + p.numel());
  if (p.impl()->grad) {
    Tensor g(p.impl()->grad);
    dst.copy_(g.is_contiguous() ? g.reshape({p.numel()}) : g.contiguous().reshape({p.numel()}));
  } else {
    dst.copy_(zeros({p.numel()}, p.dtype(), p.device()));
  }
  copied_[i] = 1;
  if (--b.pending == 0) mark_ready(bucket_of_[i]);
}

void GradReducer::mark_ready(int b) {
  {
    std::lock_guard<std::mutex> l(mu_);
    ready_[b] = 1;
  }
  cv_.notify_all();
}

void GradReducer::on_grad(int i) {
  if (!armed_) return;
  ++count_[i];
  if (!calibrated_) return;
  if (count_[i] == expected_[i]) {
    copy_in(i);
  } else if (count_[i] > expected_[i] && overrun_ < 0) {
    overrun_ = i;
  }
}

void GradReducer::finish() {
  OAR_CHECK(armed_, "GradReducer::finish without prepare(true)");
  NoGradGuard no_grad;
  for (int i = 0; i < static_cast<int>(params_.size()); ++i)
    if (!copied_[i]) copy_in(i);
  {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return next_ == static_cast<int>(buckets_.size()); });
    active_ = false;
  }
  armed_ = false;
  if (error_) std::rethrow_exception(error_);
  OAR_CHECK(overrun_ < 0, "distributed: parameter ", overrun_,
            " received more gradient contributions than in the first step; the gradient "
            "reducer needs the same graph every step");
  if (!calibrated_) {
    expected_ = count_;
    calibrated_ = true;
  }
  for (size_t bi = 0; bi < buckets_.size(); ++bi) {
    Bucket& b = buckets_[bi];
    for (size_t k = 0; k < b.params.size(); ++k) {
      Tensor& p = params_[b.params[k]];
      Tensor src = b.buffer.slice(0, b.offsets[k], b.offsets[k] + p.numel()).reshape(p.shape());
      if (p.impl()->grad)
        Tensor(p.impl()->grad).copy_(src);
      else
        p.impl()->grad = src.clone().impl_ptr();
    }
  }
}

void GradReducer::loop() {
  std::unique_lock<std::mutex> l(mu_);
  const int nb = static_cast<int>(buckets_.size());
  for (;;) {
    cv_.wait(l, [&] { return stop_ || (active_ && next_ < nb && ready_[next_]); });
    if (stop_) return;
    const int b = next_;
    const bool failed = error_ != nullptr;
    l.unlock();
    std::exception_ptr err;
    if (!failed) {
      try {
        group_->allreduce(buckets_[b].buffer, ReduceOp::avg);
      } catch (...) {
        err = std::current_exception();
      }
    }
    l.lock();
    if (err && !error_) error_ = err;
    ++next_;
    cv_.notify_all();
  }
}

}  // namespace oar::dist
