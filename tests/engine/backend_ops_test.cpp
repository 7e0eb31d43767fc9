// CPU vs CUDA for every op with a CUDA kernel, in the style of ggml's test-backend-ops: the same
// random inputs (several shapes, broadcasting, non-contiguous views, f32 / bf16 / i64) run on
// both devices, forward and backward through autograd, compared by normalised mean squared
// error. One line per (op, shapes, dtype, layout). Skipped where no GPU is visible.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "engine/ops/attention.h"
#include "engine/ops/binary.h"
#include "engine/ops/conv.h"
#include "engine/ops/dropout.h"
#include "engine/ops/index.h"
#include "engine/ops/join.h"
#include "engine/ops/loss.h"
#include "engine/ops/matmul.h"
#include "engine/ops/minmax.h"
#include "engine/ops/norm.h"
#include "engine/ops/one_hot.h"
#include "engine/ops/pool.h"
#include "engine/ops/reduce.h"
#include "engine/ops/rnn.h"
#include "engine/ops/softmax.h"
#include "engine/ops/sort.h"
#include "engine/ops/statistics.h"
#include "engine/ops/unary.h"
#include "engine/ops/where.h"
#include "engine/tensor/tensor.h"

#ifdef OAR_WITH_CUDA
#include "engine/core/cuda/runtime.h"
namespace oar::cuda {
// engine/ops/cuda/cudnn_conv.h: whether convolutions and batch norm try cuDNN first.
bool cudnn_conv_enabled();
void set_cudnn_conv_enabled(bool on);
}  // namespace oar::cuda
#endif

using namespace oar;

namespace {

#define REQUIRE_CUDA()                                             \
  if (!cuda_available())                                           \
  GTEST_SKIP() << "no CUDA device visible (or a CPU-only build): " \
                  "CPU vs CUDA comparisons skipped"

const Device kGpu = Device::cuda(0);

// Layouts of an input: a contiguous tensor, the transpose of a contiguous one, a step-2 slice.
enum class Layout { contiguous, transposed, strided };
const char* layout_name(Layout l) {
  return l == Layout::contiguous ? "contig" : l == Layout::transposed ? "transposed" : "strided";
}

// Normalised mean squared error of b against a: sum((a-b)^2) / sum(a^2). NaNs must coincide.
double nmse(const Tensor& a_in, const Tensor& b_in) {
  // An input that does not reach the output (a where condition) has no gradient on either side.
  if (!a_in.defined() || !b_in.defined()) return a_in.defined() == b_in.defined() ? 0 : INFINITY;
  if (a_in.shape() != b_in.shape() || a_in.dtype() != b_in.dtype()) return INFINITY;
  const std::vector<float> a = a_in.to(Device::cpu()).to_vector<float>();
  const std::vector<float> b = b_in.to(Device::cpu()).to_vector<float>();
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) || std::isnan(b[i])) {
      if (std::isnan(a[i]) != std::isnan(b[i])) return INFINITY;
      continue;
    }
    if (std::isinf(a[i]) || std::isinf(b[i])) {
      if (a[i] != b[i]) return INFINITY;
      continue;
    }
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(a[i]) * a[i];
  }
  return den > 0 ? num / den : num;
}

double tolerance(DType t) {
  switch (t) {
    case DType::f32:
      return 1e-7;
    case DType::bf16:
    case DType::f16:
      return 5e-4;
    default:
      return 0;  // integers and bools match exactly
  }
}

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

struct Case {
  std::string op;
  Fn f;
  std::vector<Shape> shapes;
  DType dtype = DType::f32;
  Layout layout = Layout::contiguous;  // of the first input; the others are contiguous
  double lo = -2.0, hi = 2.0;
  bool grad = true;
  double tol = 0;  // nmse bound for output and gradients; 0: tolerance(dtype)
};

Shape base_shape(const Shape& s, Layout l) {
  Shape b = s;
  if (l == Layout::transposed && b.size() >= 2) std::swap(b[b.size() - 1], b[b.size() - 2]);
  if (l == Layout::strided && !b.empty()) b.back() *= 2;
  return b;
}

Tensor view_of(const Tensor& base, Layout l) {
  if (l == Layout::transposed && base.dim() >= 2) return base.transpose(-1, -2);
  if (l == Layout::strided && base.dim() >= 1) return base.slice(-1, 0, base.size(-1), 2);
  return base;
}

Tensor random_input(const Shape& s, DType dt, uint64_t seed, double lo, double hi) {
  Generator g(seed);
  if (!is_floating(dt)) {
    return randint(static_cast<int64_t>(lo), static_cast<int64_t>(hi) + 1, s, &g, DType::i64)
        .to(dt);
  }
  return rand(s, &g, lo, hi).to(dt);
}

struct Run {
  Tensor out;
  std::vector<Tensor> grads;
};

Run run_on(Device d, const Case& c, const std::vector<Tensor>& bases_cpu, bool grad) {
  Run r;
  std::vector<Tensor> leaves, views;
  for (size_t i = 0; i < bases_cpu.size(); ++i) {
    Tensor leaf = bases_cpu[i].detach().to(d);
    if (grad) leaf.set_requires_grad();
    leaves.push_back(leaf);
    views.push_back(view_of(leaf, i == 0 ? c.layout : Layout::contiguous));
  }
  r.out = c.f(views);
  if (grad) {
    Generator g(99);
    const Tensor w = rand(r.out.shape(), &g, -1.0, 1.0).to(r.out.dtype()).to(d);
    sum(mul(r.out, w)).backward();
    for (const Tensor& l : leaves) r.grads.push_back(l.grad());
  }
  return r;
}

std::string describe(const Case& c) {
  std::ostringstream os;
  os << c.op << ' ';
  for (size_t i = 0; i < c.shapes.size(); ++i) os << (i ? "x" : "") << shape_str(c.shapes[i]);
  os << ' ' << dtype_name(c.dtype) << ' ' << layout_name(c.layout);
  return os.str();
}

// Runs one case on both devices; prints its line and returns whether it passed.
bool check(const Case& c) {
  std::vector<Tensor> bases;
  for (size_t i = 0; i < c.shapes.size(); ++i) {
    const Layout l = i == 0 ? c.layout : Layout::contiguous;
    bases.push_back(random_input(base_shape(c.shapes[i], l), c.dtype, 17 + i, c.lo, c.hi));
  }
  const bool grad = c.grad && is_floating(c.dtype);
  std::string line = describe(c);
  bool ok = true;
  try {
    const Run cpu = run_on(Device::cpu(), c, bases, grad);
    const Run gpu = run_on(kGpu, c, bases, grad);
    const double tol = c.tol > 0 ? c.tol : tolerance(cpu.out.dtype());
    if (gpu.out.device() != kGpu) {
      ok = false;
      line += " output not on the GPU";
    }
    const double e = nmse(cpu.out, gpu.out);
    ok = ok && e <= tol;
    char buf[96];
    std::snprintf(buf, sizeof buf, " fwd nmse=%.2e", e);
    line += buf;
    for (size_t i = 0; i < cpu.grads.size(); ++i) {
      const double eg = nmse(cpu.grads[i], gpu.grads[i]);
      ok = ok && eg <= (c.tol > 0 ? c.tol : tolerance(c.dtype));
      std::snprintf(buf, sizeof buf, " bwd%zu nmse=%.2e", i, eg);
      line += buf;
    }
  } catch (const std::exception& ex) {
    ok = false;
    line += std::string(" error: ") + ex.what();
  }
  std::printf("  %-60s %s\n", line.c_str(), ok ? "OK" : "FAIL");
  return ok;
}

int run_all(const std::vector<Case>& cases) {
  int failed = 0;
  for (const Case& c : cases) failed += check(c) ? 0 : 1;
  std::printf("  %zu cases, %d failed\n", cases.size(), failed);
  return failed;
}

Fn binary_fn(Tensor (*f)(const Tensor&, const Tensor&)) {
  return [f](const std::vector<Tensor>& x) { return f(x[0], x[1]); };
}
Fn unary_fn(Tensor (*f)(const Tensor&)) {
  return [f](const std::vector<Tensor>& x) { return f(x[0]); };
}

const std::vector<std::vector<Shape>> kBinaryShapes = {
    {{4, 5}, {4, 5}}, {{3, 1, 5}, {4, 5}}, {{2, 3, 4, 5}, {5}}, {{7, 3}, {}}, {{33, 65}, {33, 1}}};

}  // namespace

TEST(BackendOps, Binary) {
  REQUIRE_CUDA();
  struct Op {
    const char* name;
    Tensor (*f)(const Tensor&, const Tensor&);
    bool grad, ints;
    double lo, hi;
  };
  const std::vector<Op> ops = {{"add", add, true, true, -2, 2},
                               {"sub", sub, true, true, -2, 2},
                               {"mul", mul, true, true, -2, 2},
                               {"div", div, true, false, 0.5, 2},
                               {"pow", pow, true, false, 0.5, 2},
                               {"maximum", maximum, true, true, -2, 2},
                               {"minimum", minimum, true, true, -2, 2},
                               {"eq", eq, false, true, -2, 2},
                               {"ne", ne, false, true, -2, 2},
                               {"lt", lt, false, true, -2, 2},
                               {"le", le, false, true, -2, 2},
                               {"gt", gt, false, true, -2, 2},
                               {"ge", ge, false, true, -2, 2},
                               {"logical_and", logical_and, false, true, -1, 1},
                               {"logical_or", logical_or, false, true, -1, 1},
                               {"logical_xor", logical_xor, false, true, -1, 1}};
  std::vector<Case> cases;
  for (const Op& op : ops)
    for (const auto& shapes : kBinaryShapes)
      for (DType dt : {DType::f32, DType::bf16, DType::i64}) {
        if (dt == DType::i64 && !op.ints) continue;
        for (Layout l : {Layout::contiguous, Layout::transposed, Layout::strided}) {
          if (l != Layout::contiguous && (dt != DType::f32 || shapes[0].size() < 2)) continue;
          cases.push_back({op.name, binary_fn(op.f), shapes, dt, l, op.lo, op.hi, op.grad});
        }
      }
  // Contiguous operands that start one element into their storage: not aligned for the packed
  // (vector-access) path, so the plain loop runs; 1029 elements leave a tail of 1 per pack of 4.
  for (DType dt : {DType::f32, DType::bf16}) {
    cases.push_back({"mul offset1",
                     [](const std::vector<Tensor>& x) {
                       return mul(x[0].slice(0, 1, 1030), x[1].slice(0, 1, 1030));
                     },
                     {{1030}, {1030}},
                     dt});
    cases.push_back({"sub packed", binary_fn(sub), {{1029}, {1029}}, dt});
  }
  EXPECT_EQ(run_all(cases), 0);
}

TEST(BackendOps, Unary) {
  REQUIRE_CUDA();
  struct Op {
    const char* name;
    Fn f;
    bool grad, ints;
    double lo, hi;
  };
  const std::vector<Op> ops = {
      {"exp", unary_fn(exp), true, false, -2, 2},
      {"log", unary_fn(log), true, false, 0.5, 3},
      {"sqrt", unary_fn(sqrt), true, false, 0.5, 3},
      {"rsqrt", unary_fn(rsqrt), true, false, 0.5, 3},
      {"abs", unary_fn(abs), true, true, -3, 3},
      {"sign", unary_fn(sign), false, true, -3, 3},
      {"erf", unary_fn(erf), true, false, -2, 2},
      {"sin", unary_fn(sin), true, false, -3, 3},
      {"cos", unary_fn(cos), true, false, -3, 3},
      {"reciprocal", unary_fn(reciprocal), true, false, 0.5, 3},
      {"square", unary_fn(square), true, true, -3, 3},
      {"clamp", [](const std::vector<Tensor>& x) { return clamp(x[0], -1.0, 0.5); }, true, false,
       -2, 2},
      {"relu", unary_fn(relu), true, true, -3, 3},
      {"relu6", unary_fn(relu6), true, false, -2, 8},
      {"leaky_relu", [](const std::vector<Tensor>& x) { return leaky_relu(x[0], 0.1); }, true,
       false, -3, 3},
      {"elu", [](const std::vector<Tensor>& x) { return elu(x[0], 0.7); }, true, false, -3, 3},
      {"gelu", [](const std::vector<Tensor>& x) { return gelu(x[0], false); }, true, false, -3, 3},
      {"gelu_tanh", [](const std::vector<Tensor>& x) { return gelu(x[0], true); }, true, false, -3,
       3},
      {"sigmoid", unary_fn(sigmoid), true, false, -4, 4},
      {"tanh", unary_fn(tanh), true, false, -3, 3},
      {"silu", unary_fn(silu), true, false, -4, 4},
      {"hard_sigmoid", unary_fn(hard_sigmoid), true, false, -5, 5},
      {"hard_swish", unary_fn(hard_swish), true, false, -5, 5},
      {"softplus", [](const std::vector<Tensor>& x) { return softplus(x[0], 2.0, 3.0); }, true,
       false, -3, 3}};
  std::vector<Case> cases;
  for (const Op& op : ops)
    for (const Shape& s : {Shape{}, Shape{17}, Shape{3, 4, 5}, Shape{129, 257}})
      for (DType dt : {DType::f32, DType::bf16, DType::i64}) {
        if (dt == DType::i64 && !op.ints) continue;
        for (Layout l : {Layout::contiguous, Layout::transposed, Layout::strided}) {
          if (l != Layout::contiguous && (dt != DType::f32 || s.size() < 2)) continue;
          cases.push_back({op.name, op.f, {s}, dt, l, op.lo, op.hi, op.grad});
        }
      }
  for (DType dt : {DType::f32, DType::bf16})
    cases.push_back(
        {"exp offset1",
         [](const std::vector<Tensor>& x) { return exp(x[0].slice(0, 1, x[0].size(0))); },
         {{1031}},
         dt});
  EXPECT_EQ(run_all(cases), 0);
}

TEST(BackendOps, SumAndMean) {
  REQUIRE_CUDA();
  struct Red {
    Shape shape, dims;
    bool keepdim;
  };
  const std::vector<Red> reds = {
      {{4, 5, 6}, {}, false},
      {{4, 5, 6}, {0}, false},
      {{4, 5, 6}, {1}, true},
      {{4, 5, 6}, {2}, false},
      {{4, 5, 6}, {0, 2}, true},
      {{3, 5000}, {1}, false},
      {{70000}, {}, false},
      {{5000, 3}, {0}, false},
      {{}, {}, false},
      // Column sums in chunks ([M, K] over M, a middle dim) and a split conv-bias-like sum.
      {{300, 40}, {0}, false},
      {{6, 7, 33}, {1}, false},
      {{8, 3, 40, 40}, {0, 2, 3}, true}};
  std::vector<Case> cases;
  for (const Red& r : reds)
    for (DType dt : {DType::f32, DType::bf16, DType::i64})
      for (Layout l : {Layout::contiguous, Layout::transposed, Layout::strided}) {
        if (l != Layout::contiguous && (dt != DType::f32 || r.shape.size() < 2)) continue;
        const std::string dims = "dims=" + shape_str(r.dims) + (r.keepdim ? " keepdim" : "");
        cases.push_back({"sum " + dims,
                         [r](const std::vector<Tensor>& x) { return sum(x[0], r.dims, r.keepdim); },
                         {r.shape},
                         dt,
                         l,
                         -2,
                         2,
                         true});
        if (is_floating(dt))
          cases.push_back(
              {"mean " + dims,
               [r](const std::vector<Tensor>& x) { return mean(x[0], r.dims, r.keepdim); },
               {r.shape},
               dt,
               l,
               -2,
               2,
               true});
      }
  EXPECT_EQ(run_all(cases), 0);
}

TEST(BackendOps, CopyAndConvert) {
  REQUIRE_CUDA();
  const std::vector<DType> dts = {DType::f32, DType::bf16, DType::f16,    DType::i64,
                                  DType::i32, DType::u8,   DType::boolean};
  std::vector<Case> cases;
  for (DType from : {DType::f32, DType::bf16, DType::i64})
    for (DType to : dts)
      for (Layout l : {Layout::contiguous, Layout::transposed, Layout::strided})
        cases.push_back({std::string("to(") + dtype_name(to) + ")",
                         [to](const std::vector<Tensor>& x) { return x[0].to(to); },
                         {{6, 7}},
                         from,
                         l,
                         0,
                         9,
                         is_floating(to)});
  for (Layout l : {Layout::contiguous, Layout::transposed, Layout::strided}) {
    cases.push_back({"contiguous",
                     [](const std::vector<Tensor>& x) { return x[0].contiguous(); },
                     {{5, 9, 3}},
                     DType::f32,
                     l});
    cases.push_back({"expand+contiguous",
                     [](const std::vector<Tensor>& x) {
                       return x[0].unsqueeze(0).expand({4, -1, -1}).contiguous();
                     },
                     {{5, 9}},
                     DType::f32,
                     l});
    cases.push_back({"permute+clone",
                     [](const std::vector<Tensor>& x) {
                       return x[0].permute({2, 0, 1}).clone();
                     },
                     {{5, 9, 3}},
                     DType::bf16,
                     l});
  }
  EXPECT_EQ(run_all(cases), 0);
}

TEST(BackendOps, FillAndRandomAreIdentical) {
  REQUIRE_CUDA();
  for (DType dt : {DType::f32, DType::bf16, DType::i64, DType::boolean}) {
    EXPECT_EQ(nmse(full({3, 33}, 1.5, dt), full({3, 33}, 1.5, dt, kGpu)), 0) << dtype_name(dt);
  }
  Tensor z = zeros({4, 6}, DType::f32, kGpu);
  z.slice(1, 0, 6, 2).fill_(3.0);
  Tensor zc = zeros({4, 6});
  zc.slice(1, 0, 6, 2).fill_(3.0);
  EXPECT_EQ(nmse(zc, z), 0) << "strided fill";
  // Zero fills of contiguous tensors are memsets: every dtype's +0, only the view's elements,
  // and -0 keeps its sign (no memset).
  for (DType dt : {DType::f32, DType::bf16, DType::i64, DType::boolean}) {
    Tensor g = full({10}, 1.0, dt, kGpu);
    g.slice(0, 2, 6).fill_(0.0);
    Tensor c = full({10}, 1.0, dt);
    c.slice(0, 2, 6).fill_(0.0);
    EXPECT_EQ(nmse(c, g), 0) << "zero fill of a view, " << dtype_name(dt);
  }
  Tensor nz = full({5}, 1.0, DType::f32, kGpu);
  nz.fill_(-0.0);
  for (float v : nz.to(Device::cpu()).to_vector<float>()) EXPECT_TRUE(v == 0.0f && std::signbit(v));
  for (DType dt : {DType::f32, DType::bf16}) {
    Generator a(5), b(5);
    const Tensor rc = rand({1000, 37}, &a, -2, 3, dt), rg = rand({1000, 37}, &b, -2, 3, dt, kGpu);
    EXPECT_EQ(rc.to_vector<float>(), rg.to_vector<float>()) << "rand " << dtype_name(dt);
    const Tensor nc = randn({1001}, &a, 1, 2, dt), ng = randn({1001}, &b, 1, 2, dt, kGpu);
    EXPECT_LE(nmse(nc, ng), 1e-12) << "randn " << dtype_name(dt);
    EXPECT_EQ(a.state().offset, b.state().offset);
  }
  Generator a(9), b(9);
  EXPECT_EQ(randint(-7, 100, {999}, &a).to_vector<int64_t>(),
            randint(-7, 100, {999}, &b, DType::i64, kGpu).to_vector<int64_t>());
  std::printf("  fill, rand, randn, randint: CPU and CUDA agree\n");
}

TEST(BackendOps, InPlaceUpdates) {
  REQUIRE_CUDA();
  for (DType dt : {DType::f32, DType::bf16, DType::i64}) {
    Tensor ac = random_input({5, 8}, dt, 1, -3, 3), bc = random_input({8}, dt, 2, -3, 3);
    Tensor ag = ac.to(kGpu), bg = bc.to(kGpu);
    add_(ac, bc, 1.0);
    add_(ag, bg, 1.0);
    add_(ac, bc, -2.0);
    add_(ag, bg, -2.0);
    mul_(ac, 3.0);
    mul_(ag, 3.0);
    Tensor tc = ac.t(), tg = ag.t();  // in place through a transposed view
    add_(tc, bc.unsqueeze(1), 0.5);
    add_(tg, bg.unsqueeze(1), 0.5);
    const double e = nmse(ac, ag);
    std::printf("  add_/mul_ [5, 8] %s nmse=%.2e %s\n", dtype_name(dt), e,
                e <= tolerance(dt) ? "OK" : "FAIL");
    EXPECT_LE(e, tolerance(dt)) << dtype_name(dt);
  }
}

namespace {

// Class targets in [0, classes) of `shape`, every fifth one `ignore` when ignore >= -100.
Tensor class_targets(const Shape& shape, int64_t classes, uint64_t seed, int64_t ignore = -1) {
  Generator g(seed);
  Tensor t = randint(0, classes, shape, &g, DType::i64);
  if (ignore != -1) {
    std::vector<int64_t> v = t.to_vector<int64_t>();
    for (size_t i = 0; i < v.size(); i += 5) v[i] = ignore;
    t = tensor<int64_t>(v, shape);
  }
  return t;
}

}  // namespace

TEST(BackendOps, Matmul) {
  REQUIRE_CUDA();
  const std::vector<std::vector<Shape>> pairs = {
      {{5, 7}, {7, 3}},          {{1, 6}, {6, 1}},
      {{33, 65}, {65, 17}},      {{2, 3, 4, 5}, {2, 3, 5, 6}},
      {{3, 1, 4, 5}, {2, 5, 6}}, {{4, 9}, {3, 9, 2}},
      {{17}, {17, 4}},           {{4, 17}, {17}},
      {{130, 70}, {70, 129}}};
  std::vector<Case> cases;
  for (const auto& shapes : pairs)
    for (DType dt : {DType::f32, DType::bf16})
      for (Layout l : {Layout::contiguous, Layout::transposed, Layout::strided}) {
        if (l != Layout::contiguous && (dt != DType::f32 || shapes[0].size() < 2)) continue;
        cases.push_back({"matmul", binary_fn(matmul), shapes, dt, l, -2, 2, true, 0});
      }
  for (DType dt : {DType::f32, DType::bf16}) {
    cases.push_back({"bmm", binary_fn(bmm), {{3, 4, 5}, {3, 5, 6}}, dt});
    cases.push_back({"bmm", binary_fn(bmm), {{3, 4, 5}, {3, 5, 6}}, dt, Layout::transposed});
    cases.push_back({"linear+bias",
                     [](const std::vector<Tensor>& x) { return linear(x[0], x[1], x[2]); },
                     {{2, 5, 7}, {4, 7}, {4}},
                     dt});
    cases.push_back({"linear",
                     [](const std::vector<Tensor>& x) { return linear(x[0], x[1]); },
                     {{9, 31}, {13, 31}},
                     dt,
                     Layout::strided});
    cases.push_back({"gemm+c",
                     [](const std::vector<Tensor>& x) { return gemm(x[0], x[1], x[2]); },
                     {{6, 5}, {5, 4}, {4}},
                     dt,
                     Layout::transposed});
  }
  EXPECT_EQ(run_all(cases), 0);
}

TEST(BackendOps, Softmax) {
  REQUIRE_CUDA();
  struct S {
    Shape shape;
    int64_t dim;
  };
  const std::vector<S> ss = {{{4, 10}, -1},  {{4, 10}, 0},     {{3, 5, 7}, 1},
                             {{2, 1000}, 1}, {{3, 70, 5}, -1}, {{1}, 0}};
  std::vector<Case> cases;
  for (const S& s : ss)
    for (bool log : {false, true})
      for (DType dt : {DType::f32, DType::bf16})
        for (Layout l : {Layout::contiguous, Layout::transposed}) {
          if (l != Layout::contiguous && (dt != DType::f32 || s.shape.size() < 2)) continue;
          const int64_t d = s.dim;
          cases.push_back(
              {std::string(log ? "log_softmax" : "softmax") + " dim=" + std::to_string(d),
               [d, log](const std::vector<Tensor>& x) {
                 return log ? log_softmax(x[0], d) : softmax(x[0], d);
               },
               {s.shape},
               dt,
               l,
               -4,
               4});
        }
  EXPECT_EQ(run_all(cases), 0);
}

TEST(BackendOps, CrossEntropyAndNll) {
  REQUIRE_CUDA();
  struct L {
    Shape logits;
    double smoothing;
    std::string reduction;
    bool weighted, ignore;
  };
  const std::vector<L> ls = {
      {{8, 10}, 0.0, "mean", false, false},  {{8, 10}, 0.0, "sum", false, true},
      {{8, 10}, 0.1, "mean", true, false},   {{7, 5}, 0.2, "none", false, true},
      {{4, 5, 3}, 0.0, "mean", false, true}, {{2, 6, 3, 2}, 0.1, "none", true, false},
      {{3, 1000}, 0.0, "mean", false, false}};
  std::vector<Case> cases;
  for (const L& l : ls)
    for (DType dt : {DType::f32, DType::bf16}) {
      Shape ts = l.logits;
      const int64_t classes = ts[1];
      ts.erase(ts.begin() + 1);
      const Tensor target = class_targets(ts, classes, 5, l.ignore ? -100 : -1);
      Generator gw(11);
      const Tensor weight = l.weighted ? rand({classes}, &gw, 0.5, 2.0) : Tensor();
      const std::string name = "cross_entropy eps=" + std::to_string(l.smoothing).substr(0, 3) +
                               " " + l.reduction + (l.weighted ? " weighted" : "") +
                               (l.ignore ? " ignore" : "");
      cases.push_back({name,
                       [l, target, weight](const std::vector<Tensor>& x) {
                         const Device d = x[0].device();
                         return cross_entropy(x[0], target.to(d), -100, l.smoothing, l.reduction,
                                              weight.defined() ? weight.to(d) : weight);
                       },
                       {l.logits},
                       dt,
                       Layout::contiguous,
                       -3,
                       3});
      cases.push_back({"nll_loss(log_softmax) " + l.reduction + (l.weighted ? " weighted" : ""),
                       [l, target, weight](const std::vector<Tensor>& x) {
                         const Device d = x[0].device();
                         return nll_loss(log_softmax(x[0], 1), target.to(d), -100, l.reduction,
                                         weight.defined() ? weight.to(d) : weight);
                       },
                       {l.logits},
                       dt,
                       Layout::contiguous,
                       -3,
                       3});
    }
  EXPECT_EQ(run_all(cases), 0);
}

TEST(BackendOps, Conv) {
  REQUIRE_CUDA();
  struct C {
    std::string name;
    Shape x, w;
    ConvParams p;
    bool bias;
  };
  const std::vector<C> cs = {
      {"conv2d 3x3 pad1", {2, 3, 9, 9}, {4, 3, 3, 3}, {{1}, {1}, {1}, 1}, true},
      {"conv2d 3x3 stride2", {2, 3, 10, 9}, {5, 3, 3, 3}, {{2}, {0}, {1}, 1}, false},
      {"conv2d groups2", {2, 4, 7, 7}, {6, 2, 3, 3}, {{1}, {1}, {1}, 2}, true},
      {"conv2d depthwise", {2, 4, 6, 6}, {4, 1, 3, 3}, {{1}, {1}, {1}, 4}, true},
      {"conv2d dilation2", {1, 3, 11, 11}, {2, 3, 3, 3}, {{1}, {2}, {2}, 1}, true},
      {"conv2d 1x1", {2, 8, 5, 5}, {3, 8, 1, 1}, {{1}, {0}, {1}, 1}, true},
      {"conv2d asym pad 5x3", {2, 3, 8, 7}, {4, 3, 5, 3}, {{1, 2}, {2, 1, 1, 0}, {1}, 1}, true},
      {"conv1d", {3, 4, 17}, {5, 4, 3}, {{2}, {1}, {1}, 1}, true},
      {"conv3d", {1, 2, 5, 6, 5}, {3, 2, 3, 3, 3}, {{1}, {1}, {1}, 1}, true}};
  std::vector<Case> cases;
  for (const C& c : cs)
    for (DType dt : {DType::f32, DType::bf16, DType::f16})
      for (Layout l : {Layout::contiguous, Layout::strided}) {
        if (l != Layout::contiguous && dt != DType::f32) continue;
        std::vector<Shape> shapes{c.x, c.w};
        if (c.bias) shapes.push_back({c.w[0]});
        const ConvParams p = c.p;
        cases.push_back({c.name,
                         [p](const std::vector<Tensor>& x) {
                           return conv(x[0], x[1], x.size() > 2 ? x[2] : Tensor(), p);
                         },
                         shapes, dt, l, -1, 1, true, dt == DType::f32 ? 0 : 2e-3});
      }
#ifdef OAR_WITH_CUDA
  // The same cases through cuDNN (where the build has it) and through im2col + cuBLAS, the path
  // that takes what cuDNN does not (asymmetric padding).
  const bool had_cudnn = cuda::cudnn_conv_enabled();
  std::printf("  cuDNN %s\n", had_cudnn ? "on" : "not in this build");
  EXPECT_EQ(run_all(cases), 0);
  cuda::set_cudnn_conv_enabled(false);
  std::printf("  im2col + cuBLAS (cuDNN off)\n");
  EXPECT_EQ(run_all(cases), 0);
  cuda::set_cudnn_conv_enabled(had_cudnn);
#else
  EXPECT_EQ(run_all(cases), 0);
#endif
}

TEST(BackendOps, ConvMore) {
  REQUIRE_CUDA();
  struct C {
    std::string name;
    Shape x, w;
    ConvParams p;
    bool bias;
  };
  const std::vector<C> cs = {
      {"conv2d depthwise stride2", {2, 6, 9, 8}, {6, 1, 3, 3}, {{2}, {1}, {1}, 6}, true},
      {"conv2d depthwise x2 5x5", {1, 4, 11, 10}, {8, 1, 5, 5}, {{1}, {2}, {1}, 4}, false},
      {"conv2d groups4 dil2 s2", {2, 8, 13, 12}, {8, 2, 3, 3}, {{2}, {2}, {2}, 4}, true},
      {"conv2d 7x7 s2 p3", {2, 3, 20, 18}, {8, 3, 7, 7}, {{2}, {3}, {1}, 1}, true},
      {"conv2d 64ch", {2, 64, 8, 8}, {32, 64, 3, 3}, {{1}, {1}, {1}, 1}, true},
      {"conv1d dilation3 groups2", {2, 4, 30}, {6, 2, 5}, {{1}, {6}, {3}, 2}, true},
      {"conv1d depthwise", {3, 5, 21}, {5, 1, 3}, {{2}, {1}, {1}, 5}, false},
      {"conv3d stride2 groups2", {2, 4, 7, 6, 7}, {4, 2, 3, 3, 3}, {{2}, {1}, {1}, 2}, true},
      {"conv3d 1x3x3", {1, 3, 4, 8, 8}, {5, 3, 1, 3, 3}, {{1}, {0, 1, 1}, {1}, 1}, true}};
  std::vector<Case> cases;
  for (const C& c : cs)
    for (DType dt : {DType::f32, DType::bf16}) {
      std::vector<Shape> shapes{c.x, c.w};
      if (c.bias) shapes.push_back({c.w[0]});
      const ConvParams p = c.p;
      cases.push_back({c.name,
                       [p](const std::vector<Tensor>& x) {
                         return conv(x[0], x[1], x.size() > 2 ? x[2] : Tensor(), p);
                       },
                       shapes, dt, Layout::contiguous, -1, 1, true, dt == DType::f32 ? 0 : 2e-3});
    }
  EXPECT_EQ(run_all(cases), 0);
#ifdef OAR_WITH_CUDA
  // TF32 tensor cores (cuDNN's default math, cuBLAS's fast TF32): about 1e-3 relative error.
  std::vector<Case> tf32;
  for (const Case& c : cases)
    if (c.dtype == DType::f32) {
      Case t = c;
      t.op += " tf32";
      t.tol = 1e-5;
      tf32.push_back(t);
    }
  const bool had_tf32 = cuda::allow_tf32();
  cuda::set_allow_tf32(true);
  EXPECT_EQ(run_all(tf32), 0);
  cuda::set_allow_tf32(had_tf32);
#endif
}

TEST(BackendOps, Pooling) {
  REQUIRE_CUDA();
  struct P {
    std::string name;
    Shape x;
    PoolParams p;
    bool max;
  };
  const std::vector<P> ps = {
      {"max_pool 2x2", {2, 3, 8, 8}, {{2, 2}, {}, {}, {}, false, false}, true},
      {"max_pool 3x3 s2 p1", {2, 3, 9, 7}, {{3, 3}, {2, 2}, {1, 1}, {}, false, false}, true},
      {"max_pool ceil", {1, 2, 7, 7}, {{2, 2}, {2, 2}, {}, {}, true, false}, true},
      {"max_pool dilation2", {1, 2, 9, 9}, {{3, 3}, {1, 1}, {}, {2, 2}, false, false}, true},
      {"max_pool1d", {2, 3, 11}, {{3}, {2}, {1}, {}, false, false}, true},
      {"max_pool3d", {1, 2, 4, 5, 6}, {{2, 2, 2}, {}, {}, {}, false, false}, true},
      {"avg_pool 2x2", {2, 3, 8, 8}, {{2, 2}, {}, {}, {}, false, false}, false},
      {"avg_pool 3x3 p1 excl", {2, 3, 7, 7}, {{3, 3}, {2, 2}, {1, 1}, {}, false, false}, false},
      {"avg_pool 3x3 p1 incl", {2, 3, 7, 7}, {{3, 3}, {2, 2}, {1, 1}, {}, false, true}, false},
      {"avg_pool ceil", {1, 2, 7, 7}, {{2, 2}, {2, 2}, {}, {}, true, false}, false}};
  std::vector<Case> cases;
  for (const P& p : ps)
    for (DType dt : {DType::f32, DType::bf16})
      for (Layout l : {Layout::contiguous, Layout::strided}) {
        if (l != Layout::contiguous && dt != DType::f32) continue;
        const PoolParams pp = p.p;
        const bool mx = p.max;
        cases.push_back({p.name,
                         [pp, mx](const std::vector<Tensor>& x) {
                           return mx ? max_pool(x[0], pp) : avg_pool(x[0], pp);
                         },
                         {p.x},
                         dt,
                         l,
                         -2,
                         2,
                         // bf16 inputs tie within a window, and which tie gets the gradient
                         // is the backend's choice.
                         !(mx && dt == DType::bf16)});
      }
  for (DType dt : {DType::f32, DType::bf16})
    cases.push_back({"global_avg_pool", unary_fn(global_avg_pool), {{2, 5, 7, 6}}, dt});
  EXPECT_EQ(run_all(cases), 0);
}

TEST(BackendOps, Normalization) {
  REQUIRE_CUDA();
  std::vector<Case> cases;
  // Large channel counts, long spatial rows, 5-D x: cuDNN's spatial batch norm and oar's
  // (rows of N) x (positions) channel walk.
  for (const Shape& s : {Shape{8, 5}, Shape{4, 3, 6, 5}, Shape{2, 7, 33}, Shape{4, 256, 7, 7},
                         Shape{2, 3, 64, 64}, Shape{2, 3, 4, 5, 6}}) {
    const int64_t c = s[1];
    for (Layout l : {Layout::contiguous, Layout::strided}) {
      cases.push_back({"batch_norm train",
                       [](const std::vector<Tensor>& x) {
                         return batch_norm(x[0], Tensor(), Tensor(), x[1], x[2], true);
                       },
                       {s, {c}, {c}},
                       DType::f32,
                       l,
                       -2,
                       2,
                       true,
                       1e-6});
      cases.push_back({"batch_norm eval",
                       [c](const std::vector<Tensor>& x) {
                         const Device d = x[0].device();
                         const Tensor rm = full({c}, 0.25).to(d), rv = full({c}, 1.5).to(d);
                         return batch_norm(x[0], rm, rv, x[1], x[2], false);
                       },
                       {s, {c}, {c}},
                       DType::f32,
                       l});
    }
  }
  cases.push_back({"batch_norm train no affine",
                   [](const std::vector<Tensor>& x) {
                     return batch_norm(x[0], Tensor(), Tensor(), Tensor(), Tensor(), true);
                   },
                   {{6, 4, 5, 3}},
                   DType::f32,
                   Layout::contiguous,
                   -2,
                   2,
                   true,
                   1e-6});
  cases.push_back({"batch_norm train affine, running stats",
                   [](const std::vector<Tensor>& x) {
                     const Device d = x[0].device();
                     Tensor rm = zeros({8}).to(d), rv = ones({8}).to(d);
                     return batch_norm(x[0], rm, rv, x[1], x[2], true, 0.1);
                   },
                   {{3, 8, 9, 9}, {8}, {8}},
                   DType::f32,
                   Layout::contiguous,
                   -2,
                   2,
                   true,
                   1e-6});
  // Running statistics are updated alike.
  cases.push_back({"batch_norm running stats",
                   [](const std::vector<Tensor>& x) {
                     const Device d = x[0].device();
                     Tensor rm = zeros({3}).to(d), rv = ones({3}).to(d);
                     batch_norm(x[0].detach(), rm, rv, Tensor(), Tensor(), true, 0.3);
                     return add(rm, rv);
                   },
                   {{5, 3, 4}},
                   DType::f32,
                   Layout::contiguous,
                   -2,
                   2,
                   false});
  // {300, 64} and {2, 70, 96}: the weight and bias gradients sum rows in several chunks.
  for (const Shape& s :
       {Shape{6, 16}, Shape{2, 5, 768}, Shape{3, 4, 5}, Shape{300, 64}, Shape{2, 70, 96}})
    for (Layout l : {Layout::contiguous, Layout::strided}) {
      const int64_t k = s.back();
      cases.push_back({"layer_norm",
                       [](const std::vector<Tensor>& x) { return layer_norm(x[0], 1, x[1], x[2]); },
                       {s, {k}, {k}},
                       DType::f32,
                       l,
                       -2,
                       2,
                       true,
                       1e-6});
      cases.push_back(
          {"layer_norm no affine",
           [](const std::vector<Tensor>& x) { return layer_norm(x[0], 2, Tensor(), Tensor()); },
           {s},
           DType::f32,
           l});
    }
#ifdef OAR_WITH_CUDA
  // Batch norm through cuDNN (where the build has it), then through oar's own kernels.
  const bool had_cudnn = cuda::cudnn_conv_enabled();
  std::printf("  cuDNN %s\n", had_cudnn ? "on" : "not in this build");
  EXPECT_EQ(run_all(cases), 0);
  cuda::set_cudnn_conv_enabled(false);
  std::printf("  oar's kernels (cuDNN off)\n");
  EXPECT_EQ(run_all(cases), 0);
  cuda::set_cudnn_conv_enabled(had_cudnn);
#else
  EXPECT_EQ(run_all(cases), 0);
#endif
}

TEST(BackendOps, Dropout) {
  REQUIRE_CUDA();
  std::vector<Case> cases;
  for (const Shape& s : {Shape{7, 9}, Shape{4, 3, 33}, Shape{1000}})
    for (DType dt : {DType::f32, DType::bf16})
      for (Layout l : {Layout::contiguous, Layout::transposed}) {
        if (l != Layout::contiguous && (dt != DType::f32 || s.size() < 2)) continue;
        cases.push_back({"dropout p=0.3 (same mask)",
                         [](const std::vector<Tensor>& x) {
                           Generator g(123);
                           return dropout(x[0], 0.3, true, &g);
                         },
                         {s},
                         dt,
                         l});
      }
  EXPECT_EQ(run_all(cases), 0);
}

TEST(BackendOps, EmbeddingAndIndexSelect) {
  REQUIRE_CUDA();
  std::vector<Case> cases;
  // Repeated ids: the backward adds several rows into one.
  const Tensor ids = tensor<int64_t>({3, 0, 7, 3, 3, 9, 1, 0, 7, 2, 5, 3}, {3, 4});
  const Tensor neg = tensor<int64_t>({-1, 0, 2, -3, 2}, {5});
  // 5000 ids over 300 rows of 40: the backward's GPU grouping (radix sort) with many sources per
  // row, and its block-per-row adds (rows of 32 or more; the 6-wide tables below take a thread
  // per element).
  Generator gen(5);
  const Tensor many = randint(0, 300, {50, 100}, &gen, DType::i64);
  for (DType dt : {DType::f32, DType::bf16}) {
    cases.push_back({"embedding 5000 ids",
                     [many](const std::vector<Tensor>& x) {
                       return embedding(x[0], many.to(x[0].device()), -1);
                     },
                     {{300, 40}},
                     dt});
    for (int64_t pad : {-1, 3})
      cases.push_back({"embedding padding_idx=" + std::to_string(pad),
                       [ids, pad](const std::vector<Tensor>& x) {
                         return embedding(x[0], ids.to(x[0].device()), pad);
                       },
                       {{10, 6}},
                       dt});
    for (int64_t dim : {0, 1, 2})
      for (Layout l : {Layout::contiguous, Layout::transposed}) {
        if (l != Layout::contiguous && dt != DType::f32) continue;
        cases.push_back({"index_select dim=" + std::to_string(dim),
                         [neg, dim](const std::vector<Tensor>& x) {
                           return index_select(x[0], dim, neg.to(x[0].device()));
                         },
                         {{4, 5, 6}},
                         dt,
                         l});
      }
  }
  const Tensor gidx = tensor<int64_t>({0, 2, 1, 2, 0, 0, 1, 1, 2, 0, 2, 2}, {3, 4});
  for (DType dt : {DType::f32, DType::bf16})
    for (int64_t dim : {0, 1})
      cases.push_back({"gather dim=" + std::to_string(dim),
                       [gidx, dim](const std::vector<Tensor>& x) {
                         return gather(x[0], dim, gidx.to(x[0].device()));
                       },
                       {{3, 4}},
                       dt,
                       dt == DType::f32 ? Layout::transposed : Layout::contiguous});
  for (DType dt : {DType::f32, DType::bf16}) {
    cases.push_back({"adaptive_avg_pool 5x7->3x2",
                     [](const std::vector<Tensor>& x) {
                       return adaptive_avg_pool(x[0], {3, 2});
                     },
                     {{2, 3, 5, 7}},
                     dt});
    cases.push_back({"adaptive_max_pool 5x7->3x4",
                     [](const std::vector<Tensor>& x) {
                       return adaptive_max_pool(x[0], {3, 4});
                     },
                     {{2, 3, 5, 7}},
                     dt,
                     Layout::contiguous,
                     -2,
                     2,
                     dt == DType::f32});
  }
  cases.push_back(
      {"index_select i64",
       [neg](const std::vector<Tensor>& x) { return index_select(x[0], 1, neg.to(x[0].device())); },
       {{3, 4}},
       DType::i64});
  EXPECT_EQ(run_all(cases), 0);
}

TEST(BackendOps, AttentionAndWhere) {
  REQUIRE_CUDA();
  std::vector<Case> cases;
  // Keys 5 and 6 masked for every query, and query 2 sees nothing (zero weights).
  std::vector<uint8_t> keep(5 * 7, 1);
  for (int i = 0; i < 5; ++i) keep[i * 7 + 5] = keep[i * 7 + 6] = 0;
  for (int j = 0; j < 7; ++j) keep[2 * 7 + j] = 0;
  const Tensor bool_mask = tensor<uint8_t>(keep, {5, 7}).to(DType::boolean);
  for (DType dt : {DType::f32, DType::bf16}) {
    const double tol = dt == DType::f32 ? 1e-6 : 0;
    cases.push_back({"attention",
                     [](const std::vector<Tensor>& x) {
                       return scaled_dot_product_attention(x[0], x[1], x[2]);
                     },
                     {{2, 3, 5, 8}, {2, 3, 7, 8}, {2, 3, 7, 4}},
                     dt,
                     Layout::contiguous,
                     -2,
                     2,
                     true,
                     tol});
    cases.push_back({"attention additive mask",
                     [](const std::vector<Tensor>& x) {
                       return scaled_dot_product_attention(x[0], x[1], x[2], x[3], 0.3);
                     },
                     {{2, 5, 8}, {2, 7, 8}, {2, 7, 4}, {5, 7}},
                     dt,
                     Layout::transposed,
                     -2,
                     2,
                     true,
                     tol});
    cases.push_back({"attention bool mask + dropout",
                     [bool_mask](const std::vector<Tensor>& x) {
                       Generator g(31);
                       return scaled_dot_product_attention(
                           x[0], x[1], x[2], bool_mask.to(x[0].device()), 0.0, 0.25, true, &g);
                     },
                     {{3, 5, 16}, {3, 7, 16}, {3, 7, 9}},
                     dt,
                     Layout::contiguous,
                     -2,
                     2,
                     true,
                     tol});
  }
  for (DType dt : {DType::f32, DType::bf16, DType::i64}) {
    cases.push_back({"where",
                     [](const std::vector<Tensor>& x) { return where(gt(x[0], x[1]), x[0], x[2]); },
                     {{4, 6}, {6}, {4, 1}},
                     dt,
                     dt == DType::f32 ? Layout::transposed : Layout::contiguous});
    cases.push_back(
        {"masked_fill",
         [](const std::vector<Tensor>& x) { return masked_fill(x[0], lt(x[1], 0.0), -7.0); },
         {{3, 5}, {5}},
         dt});
  }
  EXPECT_EQ(run_all(cases), 0);
}

TEST(BackendOps, MaxMinAndConcat) {
  REQUIRE_CUDA();
  std::vector<Case> cases;
  for (DType dt : {DType::f32, DType::bf16, DType::i64})
    for (Layout l : {Layout::contiguous, Layout::transposed}) {
      if (l != Layout::contiguous && dt != DType::f32) continue;
      // i64 inputs in [-2, 2] tie often: first and last positions differ.
      for (int64_t d : {0, 1, -1}) {
        cases.push_back({"max values dim=" + std::to_string(d),
                         [d](const std::vector<Tensor>& x) { return max(x[0], d).first; },
                         {{5, 4, 7}},
                         dt,
                         l});
        cases.push_back({"min indices dim=" + std::to_string(d),
                         [d](const std::vector<Tensor>& x) { return min(x[0], d, true).second; },
                         {{5, 4, 7}},
                         dt,
                         l,
                         -2,
                         2,
                         false});
        for (bool last : {false, true})
          cases.push_back(
              {std::string("argmax") + (last ? " last" : "") + " dim=" + std::to_string(d),
               [d, last](const std::vector<Tensor>& x) { return argmax(x[0], d, false, last); },
               {{5, 4, 7}},
               dt,
               l,
               -2,
               2,
               false});
      }
      cases.push_back({"amax dims=[0, 2]",
                       [](const std::vector<Tensor>& x) {
                         return amax(x[0], {0, 2}, true);
                       },
                       {{5, 4, 7}},
                       dt,
                       l});
      cases.push_back({"amin all",
                       [](const std::vector<Tensor>& x) { return amin(x[0]); },
                       {{5, 4, 7}},
                       dt,
                       l});
      for (int64_t d : {0, 1})
        cases.push_back({"concat dim=" + std::to_string(d),
                         [d](const std::vector<Tensor>& x) {
                           return concat({x[0], x[1], x[2]}, d);
                         },
                         {{3, 4}, {3, 4}, {3, 4}},
                         dt,
                         l});
    }
  EXPECT_EQ(run_all(cases), 0);
}

TEST(BackendOps, PadAndOneHot) {
  REQUIRE_CUDA();
  struct P {
    Shape shape;
    std::vector<int64_t> pads;
    std::string mode;
  };
  const std::vector<P> ps = {{{4, 5}, {1, 2, 0, 3}, "constant"},
                             {{2, 3, 6}, {0, 0, 2, 1, 1, 2}, "constant"},
                             {{3, 7}, {-1, 2, 2, -3}, "constant"},
                             {{2, 4, 5}, {0, 0, 3, 2, 4, 1}, "reflect"},
                             {{3, 6}, {2, 0, 1, 5}, "reflect"},
                             {{2, 3, 4}, {1, 1, 3, 0, 2, 5}, "edge"},
                             {{9}, {4, 7}, "edge"},
                             {{5, 6}, {-2, 1, 3, -1}, "edge"}};
  std::vector<Case> cases;
  for (const P& p : ps)
    for (DType dt : {DType::f32, DType::bf16, DType::i64})
      for (Layout l : {Layout::contiguous, Layout::transposed}) {
        if (l != Layout::contiguous && (dt != DType::f32 || p.shape.size() < 2)) continue;
        cases.push_back(
            {"pad " + p.mode + " " + shape_str(p.pads),
             [p](const std::vector<Tensor>& x) { return pad(x[0], p.pads, p.mode, 1.5); },
             {p.shape},
             dt,
             l});
      }
  for (DType out : {DType::f32, DType::bf16, DType::i64, DType::boolean})
    for (const Shape& s : {Shape{7}, Shape{3, 5}, Shape{2, 3, 4}})
      cases.push_back({std::string("one_hot 6 -> ") + dtype_name(out),
                       [out](const std::vector<Tensor>& x) { return one_hot(x[0], 6, out); },
                       {s},
                       DType::i64,
                       Layout::contiguous,
                       0,
                       5,
                       false});
  cases.push_back({"one_hot transposed i64",
                   [](const std::vector<Tensor>& x) { return one_hot(x[0], 4); },
                   {{5, 3}},
                   DType::i64,
                   Layout::transposed,
                   0,
                   3,
                   false});
  EXPECT_EQ(run_all(cases), 0);
  // A bad index is reported as on the CPU (index and position), not written out of bounds.
  const Tensor bad = tensor<int64_t>({0, 2, 7, 1}, {4});
  for (Device d : {Device::cpu(), kGpu}) {
    try {
      one_hot(bad.to(d), 5);
      ADD_FAILURE() << "one_hot accepted index 7 of 5 classes on " << d.str();
    } catch (const std::exception& e) {
      EXPECT_NE(std::string(e.what()).find("index 7 at position 2"), std::string::npos) << e.what();
    }
  }
}

TEST(BackendOps, SmoothL1AndGroupNorm) {
  REQUIRE_CUDA();
  std::vector<Case> cases;
  for (double beta : {1.0, 0.3, 0.0})
    for (const std::string red : {"none", "mean", "sum"})
      for (DType dt : {DType::f32, DType::bf16})
        for (Layout l : {Layout::contiguous, Layout::transposed}) {
          if (l != Layout::contiguous && dt != DType::f32) continue;
          cases.push_back({"smooth_l1 beta=" + std::to_string(beta).substr(0, 3) + " " + red,
                           [beta, red](const std::vector<Tensor>& x) {
                             return smooth_l1_loss(x[0], x[1], beta, red);
                           },
                           {{6, 9}, {6, 9}},
                           dt,
                           l});
        }
  struct G {
    Shape shape;
    int64_t groups;
    bool affine;
  };
  const std::vector<G> gs = {{{2, 6, 5, 4}, 3, true},   {{2, 6, 5, 4}, 1, false},
                             {{3, 4, 7}, 4, true},      {{4, 8}, 2, true},
                             {{2, 32, 9, 9}, 8, true},  {{1, 6, 300}, 2, false},
                             {{2, 4, 2, 3, 3}, 2, true}};
  for (const G& g : gs)
    for (Layout l : {Layout::contiguous, Layout::strided}) {
      const int64_t c = g.shape[1], groups = g.groups;
      std::vector<Shape> shapes{g.shape};
      if (g.affine) shapes.insert(shapes.end(), {{c}, {c}});
      cases.push_back({"group_norm groups=" + std::to_string(groups),
                       [groups](const std::vector<Tensor>& x) {
                         return x.size() > 1 ? group_norm(x[0], groups, x[1], x[2])
                                             : group_norm(x[0], groups, Tensor(), Tensor());
                       },
                       shapes, DType::f32, l, -2, 2, true, 1e-6});
    }
  EXPECT_EQ(run_all(cases), 0);
}

TEST(BackendOps, SortTopkCumsum) {
  REQUIRE_CUDA();
  std::vector<Case> cases;
  // i64 inputs in [-3, 3] tie often: ties must keep the lower index first on both devices.
  for (const Shape& s : {Shape{5, 9}, Shape{3, 3000}, Shape{2000, 5}, Shape{4, 3, 6}, Shape{1}})
    for (DType dt : {DType::f32, DType::bf16, DType::i64})
      for (bool desc : {false, true})
        for (int64_t d : {int64_t{-1}, int64_t{0}}) {
          const std::string tag = std::string(desc ? " desc" : "") + " dim=" + std::to_string(d);
          cases.push_back(
              {"sort values" + tag,
               [d, desc](const std::vector<Tensor>& x) { return sort(x[0], d, desc).first; },
               {s},
               dt,
               Layout::contiguous,
               -3,
               3});
          cases.push_back(
              {"argsort" + tag,
               [d, desc](const std::vector<Tensor>& x) { return argsort(x[0], d, desc); },
               {s},
               dt,
               Layout::contiguous,
               -3,
               3,
               false});
        }
  for (DType dt : {DType::f32, DType::bf16, DType::i64})
    for (bool largest : {true, false})
      for (int64_t k : {1, 3, 7}) {
        const std::string tag =
            std::string(largest ? " largest" : " smallest") + " k=" + std::to_string(k);
        cases.push_back(
            {"topk values" + tag,
             [k, largest](const std::vector<Tensor>& x) { return topk(x[0], k, 1, largest).first; },
             {{4, 7, 3}},
             dt,
             dt == DType::f32 ? Layout::transposed : Layout::contiguous,
             -3,
             3});
        cases.push_back({"topk indices" + tag,
                         [k, largest](const std::vector<Tensor>& x) {
                           return topk(x[0], k, -1, largest).second;
                         },
                         {{6, 300}},
                         dt,
                         Layout::contiguous,
                         -3,
                         3,
                         false});
      }
  // NaN counts as the largest value; -0 ties with +0.
  for (bool desc : {false, true})
    cases.push_back({std::string("sort with nan and -0") + (desc ? " desc" : ""),
                     [desc](const std::vector<Tensor>& x) {
                       const Tensor y = masked_fill(x[0], gt(x[0], 1.2), NAN);
                       const Tensor z = masked_fill(y, lt(abs(x[0]), 0.3), -0.0);
                       return argsort(z, -1, desc);
                     },
                     {{6, 40}},
                     DType::f32,
                     Layout::contiguous,
                     -2,
                     2,
                     false});
  for (const Shape& s : {Shape{5, 9}, Shape{4, 3, 6}, Shape{17}, Shape{3, 4000}})
    for (DType dt : {DType::f32, DType::bf16, DType::i64})
      for (int64_t d : {int64_t{0}, int64_t{-1}})
        for (int mode = 0; mode < 3; ++mode) {
          const bool excl = mode == 1, rev = mode == 2;
          cases.push_back(
              {std::string("cumsum dim=") + std::to_string(d) + (excl ? " exclusive" : "") +
                   (rev ? " reverse" : ""),
               [d, excl, rev](const std::vector<Tensor>& x) { return cumsum(x[0], d, excl, rev); },
               {s},
               dt,
               dt == DType::f32 && s.size() >= 2 ? Layout::transposed : Layout::contiguous});
        }
  EXPECT_EQ(run_all(cases), 0);
}

TEST(BackendOps, Statistics) {
  REQUIRE_CUDA();
  struct R {
    Shape shape, dims;
  };
  const std::vector<R> rs = {{{4, 5, 6}, {}},       {{4, 5, 6}, {1}}, {{4, 5, 6}, {0, 2}},
                             {{3, 5000}, {1}},      {{5000, 3}, {0}}, {{7}, {0}},
                             {{2, 3, 4, 5}, {1, 3}}};
  std::vector<Case> cases;
  for (const R& r : rs)
    for (DType dt : {DType::f32, DType::bf16})
      for (Layout l : {Layout::contiguous, Layout::transposed}) {
        if (l != Layout::contiguous && (dt != DType::f32 || r.shape.size() < 2)) continue;
        const std::string dims = " dims=" + shape_str(r.dims);
        for (int64_t corr : {0, 1})
          cases.push_back({"var correction=" + std::to_string(corr) + dims,
                           [r, corr](const std::vector<Tensor>& x) {
                             return var(x[0], r.dims, corr, corr == 1);
                           },
                           {r.shape},
                           dt,
                           l});
        cases.push_back({"std" + dims,
                         [r](const std::vector<Tensor>& x) { return oar::std(x[0], r.dims); },
                         {r.shape},
                         dt,
                         l});
        for (double p : {0.0, 1.0, 2.0, 3.0, 0.5})
          cases.push_back({"norm p=" + std::to_string(p).substr(0, 3) + dims,
                           [r, p](const std::vector<Tensor>& x) { return norm(x[0], p, r.dims); },
                           {r.shape},
                           dt,
                           l,
                           -2,
                           2,
                           p != 0.0});
        cases.push_back(
            {"logsumexp" + dims,
             [r](const std::vector<Tensor>& x) { return logsumexp(x[0], r.dims, true); },
             {r.shape},
             dt,
             l,
             -4,
             4});
      }
  // Rows of -inf give -inf (no NaN), an inf dominates.
  cases.push_back({"logsumexp -inf rows",
                   [](const std::vector<Tensor>& x) {
                     const Tensor y = masked_fill(x[0], lt(x[0], 10.0), -INFINITY);
                     return logsumexp(masked_fill(y, gt(x[0], 0.0), INFINITY), {1});
                   },
                   {{3, 4}},
                   DType::f32,
                   Layout::contiguous,
                   -2,
                   2,
                   false});
  EXPECT_EQ(run_all(cases), 0);
}

namespace {

// Inputs: x, then (w_ih, w_hh, b_ih, b_hh) per layer and direction, then h0 (and c0).
struct RnnSpec {
  bool lstm;
  int64_t layers;
  bool bidirectional, batch_first, biases, states;
  std::vector<int64_t> lengths;  // empty: all T
  double dropout;
};

Case rnn_case(const RnnSpec& r, int64_t T, int64_t N, int64_t I, int64_t H, DType dt) {
  const int64_t G = r.lstm ? 4 : 3, D = r.bidirectional ? 2 : 1;
  std::vector<Shape> shapes{r.batch_first ? Shape{N, T, I} : Shape{T, N, I}};
  for (int64_t l = 0; l < r.layers; ++l)
    for (int64_t d = 0; d < D; ++d) {
      shapes.push_back({G * H, l == 0 ? I : D * H});
      shapes.push_back({G * H, H});
      if (r.biases) shapes.insert(shapes.end(), {{G * H}, {G * H}});
    }
  if (r.states) {
    shapes.push_back({r.layers * D, N, H});
    if (r.lstm) shapes.push_back({r.layers * D, N, H});
  }
  const Tensor lens = r.lengths.empty()
                          ? Tensor()
                          : tensor<int64_t>(r.lengths, {static_cast<int64_t>(r.lengths.size())});
  Fn f = [r, D, lens](const std::vector<Tensor>& x) {
    const Device dev = x[0].device();
    std::vector<RnnWeights> ws;
    size_t k = 1;
    for (int64_t i = 0; i < r.layers * D; ++i) {
      RnnWeights w;
      w.w_ih = x[k++];
      w.w_hh = x[k++];
      if (r.biases) {
        w.b_ih = x[k++];
        w.b_hh = x[k++];
      }
      ws.push_back(w);
    }
    const Tensor h0 = r.states ? x[k++] : Tensor();
    const Tensor c0 = r.states && r.lstm ? x[k++] : Tensor();
    const Tensor len = lens.defined() ? lens.to(dev) : Tensor();
    Generator g(77);
    const bool train = r.dropout > 0;
    const RnnOutput o = r.lstm ? lstm(x[0], ws, r.layers, r.bidirectional, r.batch_first, len, h0,
                                      c0, r.dropout, train, &g)
                               : gru(x[0], ws, r.layers, r.bidirectional, r.batch_first, len, h0,
                                     r.dropout, train, &g);
    std::vector<Tensor> parts{o.output.reshape({-1}), o.h_n.reshape({-1})};
    if (o.c_n.defined()) parts.push_back(o.c_n.reshape({-1}));
    return concat(parts, 0);
  };
  std::ostringstream name;
  name << (r.lstm ? "lstm" : "gru") << " L=" << r.layers << (r.bidirectional ? " bi" : "")
       << (r.batch_first ? " batch_first" : "") << (r.biases ? "" : " no-bias")
       << (r.states ? " h0" : "") << (r.lengths.empty() ? "" : " lengths")
       << (r.dropout > 0 ? " dropout" : "") << " T=" << T << " N=" << N << " H=" << H;
  // The CPU's gates use polynomial exp/tanh (~1e-7 absolute error), the GPU libm's.
  return {
      name.str(), f, shapes, dt, Layout::contiguous, -1, 1, true, dt == DType::f32 ? 1e-6 : 2e-3};
}

}  // namespace

TEST(BackendOps, Rnn) {
  REQUIRE_CUDA();
  std::vector<Case> cases;
  for (bool is_lstm : {true, false}) {
    const std::vector<RnnSpec> specs = {{is_lstm, 1, false, false, true, false, {}, 0.0},
                                        {is_lstm, 1, true, false, true, true, {}, 0.0},
                                        {is_lstm, 2, true, true, true, true, {5, 2, 0, 4}, 0.0},
                                        {is_lstm, 2, false, false, false, false, {3, 5, 1, 5}, 0.0},
                                        {is_lstm, 3, true, false, true, false, {}, 0.3},
                                        {is_lstm, 1, true, false, true, true, {5, 5, 3, 1}, 0.0}};
    for (const RnnSpec& r : specs) cases.push_back(rnn_case(r, 5, 4, 6, 7, DType::f32));
    cases.push_back(rnn_case(specs[1], 5, 4, 6, 7, DType::bf16));
    // Larger hidden size and batch: several blocks per step kernel and real GEMM tiles.
    cases.push_back(
        rnn_case({is_lstm, 1, true, false, true, true, {}, 0.0}, 9, 33, 40, 300, DType::f32));
  }
  EXPECT_EQ(run_all(cases), 0);
}
