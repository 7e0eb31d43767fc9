#include "engine/nn/module.h"

#include "engine/nn/forward_hook.h"

#include <algorithm>
#include <ostream>
#include <set>
#include <sstream>

#include "engine/autograd/grad_mode.h"
#include "engine/core/error.h"

namespace oar::nn {

std::string LoadReport::str() const {
  std::ostringstream os;
  for (const auto& m : missing) os << "missing: " << m << "\n";
  for (const auto& u : unexpected) os << "unexpected: " << u << "\n";
  for (const auto& m : mismatched)
    os << "shape mismatch: " << m.name << " expects " << shape_str(m.expected) << ", got "
       << shape_str(m.got) << "\n";
  return os.str();
}

void Module::check_new_name(const std::string& name, const char* what) const {
  OAR_CHECK(!name.empty() && name.find('.') == std::string::npos, name_str_for_error(), ": ", what,
            " name '", name, "' must be non-empty and contain no '.'");
  auto has = [&](const auto& list) {
    return std::any_of(list.begin(), list.end(), [&](const auto& e) { return e.first == name; });
  };
  OAR_CHECK(!has(params_) && !has(buffers_) && !has(children_), name_str_for_error(), ": ", what,
            " name '", name, "' is already registered");
}

Tensor Module::register_parameter(const std::string& name, Tensor value) {
  check_new_name(name, "parameter");
  OAR_CHECK(value.defined(), name_str_for_error(), ": parameter '", name, "' is undefined");
  OAR_CHECK(is_floating(value.dtype()), name_str_for_error(), ": parameter '", name,
            "' must be floating, got ", dtype_name(value.dtype()));
  OAR_CHECK(value.is_leaf(), name_str_for_error(), ": parameter '", name,
            "' must be a leaf tensor (detach it first)");
  value.set_requires_grad(true);
  params_.emplace_back(name, value);
  return value;
}

Tensor Module::register_buffer(const std::string& name, Tensor value) {
  check_new_name(name, "buffer");
  OAR_CHECK(value.defined(), name_str_for_error(), ": buffer '", name, "' is undefined");
  buffers_.emplace_back(name, value);
  return value;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> child) {
  check_new_name(name, "module");
  OAR_CHECK(child != nullptr, name_str_for_error(), ": module '", name, "' is null");
  OAR_CHECK(child.get() != this, name_str_for_error(), ": a module cannot contain itself");
  children_.emplace_back(name, std::move(child));
}

std::string Module::name_str_for_error() const {
  return "module " + name();
}

namespace {
std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}
}  // namespace

void Module::collect_parameters(const std::string& prefix, NamedTensors& out,
                                std::vector<const TensorImpl*>& seen) const {
  for (const auto& [n, t] : params_) {
    if (std::find(seen.begin(), seen.end(), t.impl()) != seen.end()) continue;
    seen.push_back(t.impl());
    out.emplace_back(join(prefix, n), t);
  }
  for (const auto& [n, c] : children_) c->collect_parameters(join(prefix, n), out, seen);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  std::vector<const TensorImpl*> seen;
  collect_parameters("", out, seen);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_parameters()) out.push_back(t);
  return out;
}

void Module::collect_buffers(const std::string& prefix, NamedTensors& out) const {
  for (const auto& [n, t] : buffers_) out.emplace_back(join(prefix, n), t);
  for (const auto& [n, c] : children_) c->collect_buffers(join(prefix, n), out);
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect_buffers("", out);
  return out;
}

void Module::collect_modules(const std::string& prefix,
                             std::vector<std::pair<std::string, Module*>>& out) {
  out.emplace_back(prefix, this);
  for (auto& [n, c] : children_) c->collect_modules(join(prefix, n), out);
}

std::vector<std::pair<std::string, Module*>> Module::named_modules() {
  std::vector<std::pair<std::string, Module*>> out;
  collect_modules("", out);
  return out;
}

std::shared_ptr<Module> Module::child(const std::string& name) const {
  for (const auto& [n, c] : children_)
    if (n == name) return c;
  return nullptr;
}

Tensor Module::find(const std::string& dotted) const {
  const size_t dot = dotted.find('.');
  if (dot == std::string::npos) {
    for (const auto& [n, t] : params_)
      if (n == dotted) return t;
    for (const auto& [n, t] : buffers_)
      if (n == dotted) return t;
    return Tensor();
  }
  auto c = child(dotted.substr(0, dot));
  return c ? c->find(dotted.substr(dot + 1)) : Tensor();
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, c] : children_) c->train(on);
}

void Module::set_generator(Generator* gen) {
  generator_ = gen;
  for (auto& [n, c] : children_) c->set_generator(gen);
}

void Module::collect_state(const std::string& prefix, NamedTensors& out) const {
  for (const auto& [n, t] : params_) out.emplace_back(join(prefix, n), t);
  for (const auto& [n, t] : buffers_) out.emplace_back(join(prefix, n), t);
  for (const auto& [n, c] : children_) c->collect_state(join(prefix, n), out);
}

NamedTensors Module::state_dict() const {
  NamedTensors out;
  collect_state("", out);
  return out;
}

LoadReport Module::load_state_dict(const std::map<std::string, Tensor>& state, bool strict) {
  LoadReport report;
  const NamedTensors own = state_dict();
  std::set<std::string> known;
  std::vector<std::pair<Tensor, Tensor>> copies;  // (destination, source)
  for (const auto& [name, dst] : own) {
    known.insert(name);
    auto it = state.find(name);
    if (it == state.end()) {
      report.missing.push_back(name);
    } else if (!it->second.defined() || it->second.shape() != dst.shape()) {
      report.mismatched.push_back(
          {name, dst.shape(), it->second.defined() ? it->second.shape() : Shape{}});
    } else {
      copies.emplace_back(dst, it->second);
    }
  }
  for (const auto& [name, t] : state)
    if (!known.count(name)) report.unexpected.push_back(name);
  if (strict && !report.ok())
    OAR_FAIL("load_state_dict into ", name(), ": ", report.missing.size(), " missing, ",
             report.unexpected.size(), " unexpected, ", report.mismatched.size(),
             " mismatched entries\n", report.str());
  NoGradGuard no_grad;
  for (auto& [dst, src] : copies) {
    Tensor d = dst;
    d.copy_(src.device() == d.device() ? src : src.to(d.device()));
  }
  return report;
}

void Module::zero_grad() {
  NoGradGuard no_grad;
  for (auto& f : flat_) f.grads.zero_();
  for (auto& [n, p] : named_parameters()) {
    Tensor g = p.grad();
    if (g.defined() && !(is_flat() && std::any_of(flat_.begin(), flat_.end(), [&](const Flat& f) {
                           return f.grads.same_storage(g);
                         })))
      g.zero_();
  }
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const auto& [name, p] : named_parameters()) n += p.numel();
  return n;
}

void Module::flatten_parameters() {
  NoGradGuard no_grad;
  const NamedTensors params = named_parameters();
  // Group by (dtype, device) in first-seen order.
  std::vector<std::pair<std::pair<DType, Device>, std::vector<Tensor>>> groups;
  for (const auto& [n, p] : params) {
    auto key = std::make_pair(p.dtype(), p.device());
    auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) {
      return g.first.first == key.first && g.first.second == key.second;
    });
    if (it == groups.end()) {
      groups.push_back({key, {}});
      it = groups.end() - 1;
    }
    it->second.push_back(p);
  }
  flat_.clear();
  for (auto& [key, ps] : groups) {
    const int64_t align = std::max<int64_t>(1, 64 / static_cast<int64_t>(dtype_size(key.first)));
    std::vector<int64_t> offsets;
    int64_t total = 0;
    for (const Tensor& p : ps) {
      offsets.push_back(total);
      total += (p.numel() + align - 1) / align * align;
    }
    Tensor flat = zeros({total}, key.first, key.second);
    Tensor flat_grad = zeros({total}, key.first, key.second);
    for (size_t i = 0; i < ps.size(); ++i) {
      Tensor p = ps[i];
      Tensor slot = flat.narrow(0, offsets[i], p.numel()).view(p.shape());
      slot.copy_(p);
      Tensor gslot = flat_grad.narrow(0, offsets[i], p.numel()).view(p.shape());
      if (p.grad().defined()) gslot.copy_(p.grad());
      TensorImpl* impl = p.impl();
      impl->storage = slot.impl()->storage;
      impl->offset = slot.offset();
      impl->strides = contiguous_strides(impl->shape);
      impl->grad = gslot.impl_ptr();
    }
    flat.impl()->grad = flat_grad.impl_ptr();  // lets an optimizer step the whole buffer
    flat_.push_back({flat, flat_grad});
  }
}

namespace {

// Re-points `impl` at a contiguous copy of itself on `device`.
void move_impl(TensorImpl* impl, Device device) {
  Tensor self(std::shared_ptr<TensorImpl>(impl, [](TensorImpl*) {}));
  if (self.device() == device) return;
  Tensor moved = self.to(device).contiguous();
  impl->storage = moved.impl()->storage;
  impl->offset = moved.offset();
  impl->strides = moved.strides();
}

}  // namespace

void Module::to(Device device) {
  NoGradGuard no_grad;
  std::vector<std::pair<std::string, Module*>> mods = named_modules();
  const bool was_flat =
      std::any_of(mods.begin(), mods.end(), [](const auto& m) { return m.second->is_flat(); });
  std::vector<const TensorImpl*> seen;
  auto move = [&](const Tensor& t) {
    if (!t.defined() || std::find(seen.begin(), seen.end(), t.impl()) != seen.end()) return;
    seen.push_back(t.impl());
    move_impl(t.impl(), device);
    if (t.impl()->grad) {
      if (was_flat) {
        // The gradient is a view of the old flat buffer: take a copy on the new device, which
        // flatten_parameters below copies into the new flat gradient.
        t.impl()->grad = t.grad().to(device).contiguous().impl_ptr();
      } else {
        move_impl(t.impl()->grad.get(), device);
      }
    }
  };
  for (const auto& [n, p] : named_parameters()) move(p);
  for (const auto& [n, b] : named_buffers()) move(b);
  for (auto& [n, m] : mods) m->flat_.clear();
  if (was_flat) flatten_parameters();
}

std::vector<Tensor> Module::flat_parameters() const {
  std::vector<Tensor> out;
  for (const auto& f : flat_) out.push_back(f.params);
  return out;
}

std::vector<Tensor> Module::flat_gradients() const {
  std::vector<Tensor> out;
  for (const auto& f : flat_) out.push_back(f.grads);
  return out;
}

Tensor Module::forward(const Tensor&) {
  OAR_FAIL("module ", name(), " has no single-tensor forward; call its own forward overload");
}

void Module::describe(std::ostream& os) const {
  os << name();
}

void Module::write_tree(std::ostream& os, const std::string& label, int depth) const {
  os << std::string(static_cast<size_t>(depth) * 2, ' ');
  if (!label.empty()) os << label << ": ";
  describe(os);
  os << "\n";
  for (const auto& [n, p] : params_)
    os << std::string(static_cast<size_t>(depth) * 2 + 2, ' ') << n << " " << shape_str(p.shape())
       << " " << dtype_name(p.dtype()) << "\n";
  for (const auto& [n, c] : children_) c->write_tree(os, n, depth + 1);
}

std::string Module::str() const {
  std::ostringstream os;
  write_tree(os, "", 0);
  return os.str();
}

namespace {
thread_local ForwardHookGuard::Hook g_forward_hook;
}  // namespace

bool forward_hook_active() { return static_cast<bool>(g_forward_hook); }

Tensor Module::operator()(const Tensor& x) {
  Tensor y = forward(x);
  if (g_forward_hook) g_forward_hook(*this, y);
  return y;
}

ForwardHookGuard::ForwardHookGuard(Hook hook) : prev_(std::move(g_forward_hook)) {
  g_forward_hook = std::move(hook);
}

ForwardHookGuard::~ForwardHookGuard() {
  g_forward_hook = std::move(prev_);
}

}  // namespace oar::nn
