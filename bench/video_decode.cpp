// Video decode + sampling throughput: for each file, open it (oar indexes its packets), pick
// SEGMENTS TSN segments with the centred (test-time) offset, decode those frames straight to
// SIZE x SIZE RGB, and count clips per second over every file, REPEATS times. bench/video_decode.py
// does the same with PyAV and decord; bench/run_video prints them side by side. One JSON line:
//   oar_bench_video_decode THREADS SEGMENTS SIZE REPEATS FILE...
// THREADS is the codec's thread count (as PyAV's thread_count and decord's num_threads).
// OAR_BENCH_INDICES=PATH writes "file idx idx ..." per file, to check the peers sample the same
// frames.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine/core/error.h"
#include "engine/core/generator.h"
#include "readers/video/decoder.h"
#include "readers/video/sampling.h"

using namespace oar;

int main(int argc, char** argv) {
  if (argc < 6) {
    std::fprintf(stderr, "usage: %s THREADS SEGMENTS SIZE REPEATS FILE...\n", argv[0]);
    return 2;
  }
  const int threads = std::atoi(argv[1]);
  const int64_t segments = std::atoll(argv[2]), size = std::atoll(argv[3]);
  const int repeats = std::atoi(argv[4]);
  std::vector<std::string> files(argv + 5, argv + argc);
  if (threads < 0 || segments < 1 || size < 1 || repeats < 1) {
    std::fprintf(stderr, "oar_bench_video_decode: THREADS >= 0, SEGMENTS, SIZE, REPEATS >= 1\n");
    return 2;
  }
  readers::DecodeOptions o;
  o.threads = threads;
  o.height = o.width = size;
  Generator rng(0);  // unused by the centred sampling, which draws nothing
  auto clip = [&](const std::string& f, std::vector<int64_t>* idx_out) {
    readers::VideoDecoder dec(f, o);
    auto idx = readers::sample_tsn(dec.num_frames(), segments, 1, false, rng);
    auto frames = dec.decode(idx);
    OAR_CHECK(frames.size() == idx.size() &&
                  frames.back().rgb.size() == static_cast<size_t>(size * size * 3),
              f, ": wrong decode output");
    if (idx_out) *idx_out = idx;
    return static_cast<uint64_t>(frames[0].rgb[0]);
  };
  try {
    // One untimed pass: warms the page cache and FFmpeg's one-time set-up; records the indices.
    uint64_t sink = 0;
    std::FILE* idx_file = nullptr;
    if (const char* p = std::getenv("OAR_BENCH_INDICES")) idx_file = std::fopen(p, "w");
    for (const auto& f : files) {
      std::vector<int64_t> idx;
      sink += clip(f, &idx);
      if (idx_file) {
        std::fprintf(idx_file, "%s", f.c_str());
        for (int64_t i : idx) std::fprintf(idx_file, " %ld", static_cast<long>(i));
        std::fprintf(idx_file, "\n");
      }
    }
    if (idx_file) std::fclose(idx_file);
    // CPU time of all the process's threads: steadier than clips/s on a shared machine.
    auto cpu_s = [] {
      rusage u{};
      getrusage(RUSAGE_SELF, &u);
      return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
             static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
    };
    const double c0 = cpu_s();
    const auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < repeats; ++r)
      for (const auto& f : files) sink += clip(f, nullptr);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double cpu = cpu_s() - c0;
    const double clips = static_cast<double>(repeats) * static_cast<double>(files.size());
    std::printf(
        "{\"impl\": \"oar\", \"threads\": %d, \"segments\": %ld, \"size\": %ld, \"clips\": %.0f, "
        "\"seconds\": %.3f, \"clips_per_s\": %.2f, \"cpu_ms_per_clip\": %.2f, \"sink\": %lu}\n",
        threads, static_cast<long>(segments), static_cast<long>(size), clips, s, clips / s,
        1000.0 * cpu / clips, static_cast<unsigned long>(sink));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "oar_bench_video_decode: %s\n", e.what());
    return 1;
  }
  return 0;
}
