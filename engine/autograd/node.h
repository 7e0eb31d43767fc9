#pragma once
// Define-by-run autograd. An op whose inputs require grad records a Node holding what its
// backward needs; backward is written with ops, so it runs on any device.
//
//   Tensor out = ...forward...;
//   if (autograd::needs_grad({a, b}))
//     autograd::record("mul", {&out}, {a, b}, [a = a.detach(), b = b.detach()](autograd::Grads g) {
//       return autograd::TensorList{g[0] * b, g[0] * a};
//     });
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "engine/tensor/tensor.h"

namespace oar::autograd {

using TensorList = std::vector<Tensor>;

struct Edge {
  std::shared_ptr<Node> node;        // set when the input came out of another op
  std::shared_ptr<TensorImpl> leaf;  // set when the input is a leaf that requires grad
  int output_nr = 0;
  Shape shape;  // the input's shape (gradients are checked against it)
  DType dtype = DType::f32;
  bool valid() const { return node != nullptr || leaf != nullptr; }
};

// What a backward function receives: one gradient per output of the op (an undefined Tensor for
// outputs that got none; use grad_or_zeros) and which inputs need a gradient.
struct Grads {
  const std::vector<Tensor>* grads;
  const std::vector<Edge>* inputs;
  const std::vector<std::pair<Shape, DType>>* outputs;

  const Tensor& operator[](size_t i) const { return (*grads)[i]; }
  bool defined(size_t i) const { return (*grads)[i].defined(); }
  Tensor grad_or_zeros(size_t i) const;
  bool needs(size_t input) const { return (*inputs)[input].valid(); }
};

// Returns one gradient per input (undefined where the input needs none).
using BackwardFn = std::function<TensorList(const Grads&)>;

struct Node {
  std::string name;
  std::vector<Edge> inputs;
  std::vector<std::pair<Shape, DType>> outputs;
  BackwardFn fn;
};

// True when grad mode is on and any input requires grad.
bool needs_grad(std::initializer_list<Tensor> inputs);
bool needs_grad(const std::vector<Tensor>& inputs);

// Attaches a node to `outputs` (which must not yet have history).
void record(const char* name, std::vector<Tensor*> outputs, const std::vector<Tensor>& inputs,
            BackwardFn fn);

// Runs backward from roots with the given output gradients, accumulating into leaves' .grad.
// The graph is freed as it is consumed.
void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grad_outputs);

// Gradients of `outputs` w.r.t. `inputs` (returned, not accumulated into .grad).
TensorList grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                const std::vector<Tensor>& grad_outputs = {});

}  // namespace oar::autograd
