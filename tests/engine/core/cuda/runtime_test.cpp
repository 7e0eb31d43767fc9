// The CUDA runtime: availability, the caching allocator's figures, streams, events, pinned
// memory and CPU<->GPU copies. Skipped where no GPU is visible.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "engine/core/allocator.h"
#include "engine/core/context.h"
#include "engine/core/error.h"
#include "engine/ops/binary.h"
#include "engine/tensor/tensor.h"
#ifdef OAR_WITH_CUDA
#include "engine/core/cuda/runtime.h"
#endif

using namespace oar;

#define REQUIRE_CUDA() \
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device visible (or a CPU-only build)"

namespace {
const Device kGpu = Device::cuda(0);

Tensor random(const Shape& s, DType dt, uint64_t seed) {
  Generator g(seed);
  return is_floating(dt) ? rand(s, &g, -5, 5).to(dt) : randint(-5, 6, s, &g, DType::i64).to(dt);
}
}  // namespace

TEST(CudaRuntime, UnavailableDeviceIsAClearError) {
  if (cuda_available()) GTEST_SKIP() << "a GPU is visible";
  try {
    (void)empty({2}, DType::f32, kGpu);
    FAIL() << "allocating on cuda:0 without a GPU should throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cuda:0"), std::string::npos) << e.what();
  }
}

TEST(CudaRuntime, BadDeviceIndexIsAClearError) {
  REQUIRE_CUDA();
  EXPECT_THROW((void)empty({2}, DType::f32, Device::cuda(15)), Error);
}

TEST(CudaRuntime, AllocatorStatsAndReuse) {
  REQUIRE_CUDA();
  Allocator& a = allocator_for(kGpu);
  a.empty_cache();
  const MemoryStats s0 = memory_stats(kGpu);
  EXPECT_EQ(s0.cached_bytes, 0);
  {
    Tensor t = empty({1000, 1000}, DType::f32, kGpu);  // 4 MB
    const MemoryStats s1 = memory_stats(kGpu);
    EXPECT_GE(s1.current_bytes - s0.current_bytes, 4000000);
    EXPECT_EQ(s1.os_allocations, s0.os_allocations + 1);
    EXPECT_GE(s1.peak_bytes, s1.current_bytes);
  }
  const MemoryStats s2 = memory_stats(kGpu);
  EXPECT_EQ(s2.current_bytes, s0.current_bytes);
  EXPECT_GE(s2.cached_bytes, 4000000);
  {
    Tensor t = empty({1000, 1000}, DType::f32, kGpu);  // served from the cache
    EXPECT_EQ(memory_stats(kGpu).os_allocations, s2.os_allocations);
    EXPECT_EQ(memory_stats(kGpu).cached_bytes, 0);
  }
  reset_peak_memory(kGpu);
  EXPECT_EQ(memory_stats(kGpu).peak_bytes, memory_stats(kGpu).current_bytes);
  a.empty_cache();
  EXPECT_EQ(memory_stats(kGpu).cached_bytes, 0);
  // The CPU allocator's figures are separate.
  EXPECT_NE(&allocator_for(Device::cpu()), &a);
}

TEST(CudaRuntime, RoundTripsAreExact) {
  REQUIRE_CUDA();
  for (DType dt :
       {DType::f32, DType::bf16, DType::f16, DType::i64, DType::i32, DType::u8, DType::boolean}) {
    SCOPED_TRACE(dtype_name(dt));
    for (const Shape& s : {Shape{}, Shape{0}, Shape{1}, Shape{7, 13}, Shape{3, 1, 257}}) {
      const Tensor c = random(s, dt, 3);
      const Tensor g = c.to(kGpu);
      EXPECT_EQ(g.device(), kGpu);
      const Tensor back = g.to(Device::cpu());
      EXPECT_EQ(back.shape(), s);
      EXPECT_EQ(std::memcmp(back.contiguous().raw_data(), c.raw_data(), c.nbytes()), 0);
    }
  }
}

TEST(CudaRuntime, NonContiguousAndConvertingCopies) {
  REQUIRE_CUDA();
  const Tensor c = random({6, 10}, DType::f32, 4);
  const Tensor g = c.to(kGpu);
  // A GPU view read on the host.
  EXPECT_EQ(g.t().to(Device::cpu()).to_vector<float>(), c.t().to_vector<float>());
  EXPECT_EQ(g.slice(1, 1, 10, 3).to_vector<float>(), c.slice(1, 1, 10, 3).to_vector<float>());
  // A host view written into a GPU view, with broadcasting and a dtype change.
  Tensor dst = zeros({10, 6}, DType::bf16, kGpu);
  dst.t().copy_(c);
  EXPECT_EQ(dst.to_vector<float>(), c.t().to(DType::bf16).to_vector<float>());
  Tensor dst2 = zeros({4, 6, 10}, DType::f32, kGpu);
  dst2.slice(0, 0, 4, 2).copy_(c.slice(0, 0, 1));  // [1, 10] broadcast to [2, 6, 10]
  Tensor want = zeros({4, 6, 10});
  want.slice(0, 0, 4, 2).copy_(c.slice(0, 0, 1));
  EXPECT_EQ(dst2.to_vector<float>(), want.to_vector<float>());
  // GPU to a strided host tensor, converting.
  Tensor host = zeros({10, 6}, DType::i64);
  host.t().copy_(g);
  EXPECT_EQ(host.t().to_vector<int64_t>(), c.to(DType::i64).to_vector<int64_t>());
  // item() and printing read through the host.
  EXPECT_FLOAT_EQ(g.select(0, 2).select(0, 3).item<float>(),
                  c.select(0, 2).select(0, 3).item<float>());
  EXPECT_NE(g.str().find("cuda:0"), std::string::npos);
}

TEST(CudaRuntime, AutogradAcrossDevices) {
  REQUIRE_CUDA();
  Tensor x = random({3, 4}, DType::f32, 5).set_requires_grad();
  Tensor y = mul(x.to(kGpu), 3.0).to(Device::cpu());
  y.backward(ones({3, 4}));
  ASSERT_TRUE(x.grad().defined());
  EXPECT_EQ(x.grad().device(), Device::cpu());
  EXPECT_EQ(x.grad().to_vector<float>(), std::vector<float>(12, 3.0f));
}

#ifdef OAR_WITH_CUDA
TEST(CudaRuntime, StreamsEventsAndPinnedMemory) {
  REQUIRE_CUDA();
  EXPECT_GE(cuda::device_count(), 1);
  EXPECT_NE(context_for(kGpu).stream, nullptr);
  void* p = cuda::alloc_pinned(64 * sizeof(float));
  float* f = static_cast<float*>(p);
  for (int i = 0; i < 64; ++i) f[i] = static_cast<float>(i);
  const Tensor pinned = from_blob(p, {8, 8}, DType::f32, cuda::free_pinned);
  cuda::Event start(true), stop(true);
  start.record(kGpu);
  const Tensor g = pinned.to(kGpu);
  const Tensor h = mul(g, 2.0);
  stop.record(kGpu);
  stop.synchronize();
  EXPECT_TRUE(stop.done());
  EXPECT_GE(start.elapsed_ms(stop), 0.0f);
  const std::vector<float> v = h.to_vector<float>();
  for (int i = 0; i < 64; ++i) EXPECT_EQ(v[i], 2.0f * i);
  cuda::synchronize(kGpu);
}
#endif
