// Gloo allreduce bandwidth between processes on this machine: sizes 1 KB .. 256 MB of float32.
//   build/bench/oar_bench_allreduce [--world 2] [--max_mb 256]
// Forks `world` processes that rendezvous on a free loopback port; rank 0 prints one row per
// size: median time per allreduce, algorithm bandwidth (bytes / time) and bus bandwidth (x
// 2(N-1)/N, the bytes each rank actually sends in a ring).
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "engine/dist/process_group.h"

using namespace oar;
using Clock = std::chrono::steady_clock;

int worker(int rank, int world, int port, int64_t max_bytes) {
  dist::RendezvousInfo info{"127.0.0.1", port, rank, world, rank, world, 0, "bench"};
  auto g = dist::init_process_group(info, "gloo", Device::cpu(), std::chrono::seconds(60));
  if (rank == 0)
    std::printf("%12s %12s %14s %14s\n", "bytes", "median_us", "algbw_GB/s", "busbw_GB/s");
  for (int64_t bytes = 1024; bytes <= max_bytes; bytes *= 4) {
    Tensor t = full({bytes / 4}, 1.0);
    const int reps = bytes <= (1 << 20) ? 100 : bytes <= (16 << 20) ? 8 : 2;
    g->allreduce(t);  // warm-up
    // Rounds of back-to-back allreduces (as nccl-tests time them): a barrier's exit skew
    // between ranks would otherwise dominate small sizes. Median of the rounds' means.
    std::vector<double> us;
    for (int round = 0; round < 5; ++round) {
      g->barrier();
      g->allreduce(t);
      const auto t0 = Clock::now();
      for (int i = 0; i < reps; ++i) g->allreduce(t);
      us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / reps);
    }
    std::sort(us.begin(), us.end());
    const double med = us[us.size() / 2];
    const double alg = static_cast<double>(bytes) / (med * 1e3);
    if (rank == 0)
      std::printf("%12ld %12.1f %14.3f %14.3f\n", static_cast<long>(bytes), med, alg,
                  alg * 2.0 * (world - 1) / world);
    std::fflush(stdout);
  }
  g->barrier();
  return 0;
}

int main(int argc, char** argv) {
  int world = 2;
  int64_t max_mb = 256;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--world")) world = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--max_mb")) max_mb = std::atoll(argv[i + 1]);
  }
  int port;
  {
    dist::TcpStore probe("127.0.0.1", 0, true, std::chrono::seconds(1));
    port = probe.port();
  }
  std::vector<pid_t> kids;
  for (int r = 1; r < world; ++r) {
    const pid_t p = fork();
    if (p == 0) _exit(worker(r, world, port, max_mb << 20));
    kids.push_back(p);
  }
  int rc = 0;
  try {
    rc = worker(0, world, port, max_mb << 20);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    rc = 1;
  }
  for (pid_t p : kids) {
    int st = 0;
    waitpid(p, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) rc = 1;
  }
  return rc;
}
