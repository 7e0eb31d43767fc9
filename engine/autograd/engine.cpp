#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "engine/autograd/grad_mode.h"
#include "engine/autograd/node.h"
#include "engine/core/error.h"
#include "engine/ops/binary.h"

namespace oar {

namespace {
thread_local bool g_grad_enabled = true;
}
bool grad_enabled() {
  return g_grad_enabled;
}
void set_grad_enabled(bool on) {
  g_grad_enabled = on;
}

namespace autograd {

Tensor Grads::grad_or_zeros(size_t i) const {
  if ((*grads)[i].defined()) return (*grads)[i];
  const auto& [shape, dtype] = (*outputs)[i];
  return zeros(shape, dtype);
}

bool needs_grad(std::initializer_list<Tensor> inputs) {
  if (!grad_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!grad_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void record(const char* name, std::vector<Tensor*> outputs, const std::vector<Tensor>& inputs,
            BackwardFn fn) {
  auto node = std::make_shared<Node>();
  node->name = name;
  node->fn = std::move(fn);
  node->inputs.reserve(inputs.size());
  for (const Tensor& in : inputs) {
    Edge e;
    if (in.defined() && in.requires_grad()) {
      if (in.impl()->grad_fn) {
        e.node = in.impl()->grad_fn;
        e.output_nr = in.impl()->output_nr;
      } else {
        e.leaf = in.impl_ptr();
      }
      e.shape = in.shape();
      e.dtype = in.dtype();
    }
    node->inputs.push_back(std::move(e));
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    Tensor* out = outputs[i];
    node->outputs.emplace_back(out->shape(), out->dtype());
    OAR_CHECK(out->impl()->grad_fn == nullptr, "autograd: output of ", name,
              " already has history");
    out->impl()->grad_fn = node;
    out->impl()->output_nr = static_cast<int>(i);
  }
}

namespace {

void accumulate(Tensor& slot, const Tensor& g) {
  if (!slot.defined()) {
    slot = g;
  } else if (sole_owner(slot) && slot.shape() == g.shape() && slot.dtype() == g.dtype()) {
    // Nothing else sees the slot's memory (not g, not another slot, not a .grad): add in
    // place, without a new buffer (the residual stream's gradients meet here).
    add_(slot, g);
  } else {
    slot = add(slot, g);
  }
}

void accumulate_leaf(TensorImpl& leaf, const Tensor& g) {
  Tensor gg = g.dtype() == leaf.dtype ? g : g.to(leaf.dtype);
  if (!leaf.grad) {
    // g becomes .grad as is when nothing else can see its memory (this call's reference and
    // the backward function's result only, a storage of its own, plain layout); otherwise a
    // private copy, since g may be shared with another input's gradient.
    const bool private_memory =
        sole_owner(gg, 2) && gg.offset() == 0 && gg.impl()->grad_fn == nullptr;
    leaf.grad = private_memory ? gg.impl_ptr() : gg.clone().impl_ptr();
  } else {
    Tensor cur(leaf.grad);
    add_(cur, gg);
  }
  for (auto& hook : leaf.grad_hooks) hook(leaf);
}

// Gradients for particular leaves are captured instead of accumulated (autograd::grad).
using Capture = std::unordered_map<TensorImpl*, Tensor>;

void run(const std::vector<Tensor>& roots, const std::vector<Tensor>& grad_outputs,
         Capture* capture) {
  OAR_CHECK(roots.size() == grad_outputs.size(), "backward: ", roots.size(), " roots but ",
            grad_outputs.size(), " gradients");
  NoGradGuard no_grad;

  // Topological order by iterative DFS post-order over nodes.
  std::vector<Node*> order;
  std::vector<std::shared_ptr<Node>> keep_alive;  // consumers drop their edges as they run
  std::unordered_set<Node*> seen;
  std::vector<std::pair<Node*, size_t>> stack;
  for (const Tensor& r : roots) {
    Node* n = r.impl()->grad_fn.get();
    if (!n || seen.count(n)) continue;
    seen.insert(n);
    keep_alive.push_back(r.impl()->grad_fn);
    stack.emplace_back(n, 0);
    while (!stack.empty()) {
      auto& [node, next] = stack.back();
      if (next < node->inputs.size()) {
        const auto& child_ptr = node->inputs[next++].node;
        Node* child = child_ptr.get();
        if (child && !seen.count(child)) {
          seen.insert(child);
          keep_alive.push_back(child_ptr);
          stack.emplace_back(child, 0);
        }
      } else {
        order.push_back(node);
        stack.pop_back();
      }
    }
  }
  std::reverse(order.begin(), order.end());

  std::unordered_map<Node*, std::vector<Tensor>> pending;
  for (size_t i = 0; i < roots.size(); ++i) {
    const Tensor& r = roots[i];
    Tensor g = grad_outputs[i];
    if (!r.requires_grad()) OAR_FAIL("backward: tensor does not require grad");
    if (r.impl()->grad_fn) {
      auto& slots = pending[r.impl()->grad_fn.get()];
      slots.resize(r.impl()->grad_fn->outputs.size());
      accumulate(slots[r.impl()->output_nr], g);
    } else if (capture && capture->count(r.impl())) {
      accumulate((*capture)[r.impl()], g);
    } else {
      accumulate_leaf(*r.impl(), g);
    }
  }

  for (Node* node : order) {
    auto it = pending.find(node);
    std::vector<Tensor> grads;
    if (it != pending.end()) grads = std::move(it->second);
    grads.resize(node->outputs.size());
    if (it != pending.end()) pending.erase(it);
    bool any = std::any_of(grads.begin(), grads.end(), [](const Tensor& t) { return t.defined(); });
    OAR_CHECK(node->fn || !any, "backward through the graph a second time (", node->name,
              "): its buffers were already freed");
    if (any) {
      Grads args{&grads, &node->inputs, &node->outputs};
      TensorList in_grads = node->fn(args);
      OAR_CHECK(in_grads.size() == node->inputs.size(), "backward of ", node->name, " returned ",
                in_grads.size(), " gradients for ", node->inputs.size(), " inputs");
      for (size_t i = 0; i < in_grads.size(); ++i) {
        const Edge& e = node->inputs[i];
        const Tensor& g = in_grads[i];
        if (!e.valid() || !g.defined()) continue;
        OAR_CHECK(g.shape() == e.shape, "backward of ", node->name, ": gradient for input ", i,
                  " has shape ", shape_str(g.shape()), ", expected ", shape_str(e.shape));
        if (e.node) {
          auto& slots = pending[e.node.get()];
          slots.resize(e.node->outputs.size());
          accumulate(slots[e.output_nr], g.dtype() == e.dtype ? g : g.to(e.dtype));
        } else if (capture && capture->count(e.leaf.get())) {
          accumulate((*capture)[e.leaf.get()], g);
        } else {
          accumulate_leaf(*e.leaf, g);
        }
      }
    }
    // Free what this node held: its saved tensors and its links to inputs.
    node->fn = nullptr;
    node->inputs.clear();
  }
}

std::vector<Tensor> default_grads(const std::vector<Tensor>& roots,
                                  const std::vector<Tensor>& given) {
  std::vector<Tensor> out = given;
  out.resize(roots.size());
  for (size_t i = 0; i < roots.size(); ++i) {
    if (out[i].defined()) {
      OAR_CHECK(out[i].shape() == roots[i].shape(), "backward: gradient shape ",
                shape_str(out[i].shape()), " does not match output shape ",
                shape_str(roots[i].shape()));
      continue;
    }
    OAR_CHECK(roots[i].numel() == 1, "backward: output has shape ", shape_str(roots[i].shape()),
              "; a non-scalar output needs an explicit gradient");
    out[i] = ones(roots[i].shape(), roots[i].dtype(), roots[i].device());
  }
  return out;
}

}  // namespace

void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grad_outputs) {
  run(roots, default_grads(roots, grad_outputs), nullptr);
}

TensorList grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                const std::vector<Tensor>& grad_outputs) {
  Capture cap;
  for (const Tensor& in : inputs) {
    OAR_CHECK(in.is_leaf() && in.requires_grad(),
              "autograd::grad: inputs must be leaves that require grad");
    cap[in.impl()] = Tensor();
  }
  run(outputs, default_grads(outputs, grad_outputs), &cap);
  TensorList out;
  for (const Tensor& in : inputs) {
    Tensor g = cap[in.impl()];
    out.push_back(g.defined() ? g : zeros_like(in));
  }
  return out;
}

}  // namespace autograd
}  // namespace oar
