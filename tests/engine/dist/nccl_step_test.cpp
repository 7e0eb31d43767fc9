// NCCL on a GPU machine: a world of one rank runs every collective and a data-parallel training
// step through the NCCL path (rendezvous over the TCP store, bucketed gradient reduction on a
// background thread, then the optimizer step). With one rank the reduced gradients must equal
// the local ones, so the parameters after the step equal a step without data parallel.
// Skipped without a GPU or without NCCL in this build.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/core/device.h"
#include "engine/dist/process_group.h"
#include "engine/dist/reducer.h"
#include "engine/ops.h"
#include "engine/optim/sgd.h"

using namespace oar;
using namespace oar::dist;

namespace {

bool skip_reason(std::string* why) {
  if (!nccl_available()) {
    *why = "this build has no NCCL backend";
    return true;
  }
  if (!cuda_available()) {
    *why = "no CUDA device visible";
    return true;
  }
  return false;
}

std::unique_ptr<ProcessGroup> world_of_one() {
  int port;
  {
    TcpStore s("127.0.0.1", 0, true, std::chrono::seconds(1));
    port = s.port();
  }
  RendezvousInfo info{"127.0.0.1", port, 0, 1, 0, 1, 0, "test"};
  return init_process_group(info, "nccl", Device::cuda(0), std::chrono::seconds(30));
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  return amax(abs(sub(a.to(Device::cpu()), b.to(Device::cpu())))).item_double();
}

}  // namespace

TEST(Nccl, WorldOfOneCollectives) {
  std::string why;
  if (skip_reason(&why)) GTEST_SKIP() << why;
  auto g = world_of_one();
  EXPECT_EQ(g->backend(), "nccl");
  Generator gen(3);
  const Tensor x = randn({1000}, &gen).to(Device::cuda(0));
  Tensor a = x.clone();
  g->allreduce(a, ReduceOp::sum);
  EXPECT_EQ(max_abs_diff(a, x), 0.0);
  g->allreduce(a, ReduceOp::avg);
  EXPECT_EQ(max_abs_diff(a, x), 0.0);
  Tensor b = x.clone();
  g->broadcast(b, 0);
  EXPECT_EQ(max_abs_diff(b, x), 0.0);
  Tensor all = zeros({1000}, DType::f32, Device::cuda(0));
  g->allgather(x, all);
  EXPECT_EQ(max_abs_diff(all, x), 0.0);
  Tensor part = zeros({1000}, DType::f32, Device::cuda(0));
  g->reduce_scatter(x, part);
  EXPECT_EQ(max_abs_diff(part, x), 0.0);
  g->barrier();
}

TEST(Nccl, WorldOfOneTrainingStep) {
  std::string why;
  if (skip_reason(&why)) GTEST_SKIP() << why;
  auto g = world_of_one();
  const Device d = Device::cuda(0);
  Generator gen(11);
  const Tensor x = randn({64, 32}, &gen).to(d), y = randint(0, 10, {64}, &gen).to(d);
  const Tensor w0 = mul(randn({10, 32}, &gen), 0.1), b0 = zeros({10});

  auto run = [&](bool data_parallel) {
    Tensor w = w0.to(d).clone(), b = b0.to(d).clone();
    w.set_requires_grad();
    b.set_requires_grad();
    optim::SGD opt({w, b}, optim::SgdOptions{0.1, 0.9});
    std::unique_ptr<GradReducer> red;
    // Tiny buckets: w and b land in different buckets, both reduced by NCCL.
    if (data_parallel)
      red = std::make_unique<GradReducer>(std::vector<Tensor>{w, b}, g->new_group("grads"), 1e-3);
    std::vector<double> losses;
    for (int step = 0; step < 3; ++step) {
      if (red) red->prepare(true);
      Tensor loss = cross_entropy(linear(x, w, b), y);
      loss.backward();
      if (red) red->finish();
      opt.step();
      opt.zero_grad();
      losses.push_back(loss.item_double());
    }
    return std::make_tuple(w, b, losses);
  };
  const auto [w1, b1, l1] = run(false);
  const auto [w2, b2, l2] = run(true);
  EXPECT_LT(l2.back(), l2.front()) << "the loss falls";
  for (size_t i = 0; i < l1.size(); ++i) EXPECT_NEAR(l1[i], l2[i], 1e-6 * std::abs(l1[i]));
  EXPECT_LE(max_abs_diff(w1, w2), 1e-6);
  EXPECT_LE(max_abs_diff(b1, b2), 1e-6);
  std::printf("nccl world of 1: 3 data-parallel steps, loss %.5f -> %.5f, max |dw| vs local %.2e\n",
              l2.front(), l2.back(), max_abs_diff(w1, w2));
}
