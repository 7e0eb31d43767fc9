#include "readers/video/sampling.h"

#include <algorithm>
#include <cmath>

#include "engine/core/error.h"

namespace oar::readers {

int64_t randint(Generator& rng, int64_t lo, int64_t hi) {
  if (hi <= lo) return lo;
  const uint64_t span = static_cast<uint64_t>(hi - lo) + 1;
  return lo + static_cast<int64_t>(rng.next_u64() % span);
}

std::vector<int64_t> sample_tsn(int64_t num_frames, int64_t seg_num, int64_t seglen, bool train,
                                Generator& rng) {
  OAR_CHECK(num_frames >= 1, "tsn sampling: the video has no frames");
  OAR_CHECK(seg_num >= 1 && seglen >= 1, "tsn sampling: seg_num and seglen must be >= 1");
  const int64_t average_dur = num_frames / seg_num;
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(seg_num * seglen));
  for (int64_t i = 0; i < seg_num; ++i) {
    int64_t idx = 0;
    if (average_dur >= seglen)
      idx = (train ? randint(rng, 0, average_dur - seglen) : (average_dur - seglen) / 2) +
            i * average_dur;
    else if (average_dur >= 1)
      idx = i * average_dur;
    else
      idx = i;
    for (int64_t j = idx; j < idx + seglen; ++j) out.push_back(j % num_frames);
  }
  return out;
}

std::vector<int64_t> sample_dense(int64_t num_frames, int64_t clip_len, int64_t frame_interval,
                                  int64_t num_clips, bool train, Generator& rng) {
  OAR_CHECK(num_frames >= 1, "dense sampling: the video has no frames");
  OAR_CHECK(clip_len >= 1 && frame_interval >= 1 && num_clips >= 1,
            "dense sampling: clip_len, frame_interval and num_clips must be >= 1");
  const int64_t span = clip_len * frame_interval;  // frames one clip covers
  std::vector<int64_t> starts(static_cast<size_t>(num_clips), 0);
  if (train) {
    const int64_t avg = (num_frames - span + 1) / num_clips;
    if (avg > 0) {
      for (int64_t c = 0; c < num_clips; ++c) starts[c] = c * avg + randint(rng, 0, avg - 1);
    } else if (num_frames > std::max(num_clips, span)) {
      for (auto& s : starts) s = randint(rng, 0, num_frames - span);
      std::sort(starts.begin(), starts.end());
    } else if (avg == 0) {
      const double ratio = static_cast<double>(num_frames - span + 1) / num_clips;
      for (int64_t c = 0; c < num_clips; ++c)
        starts[c] = static_cast<int64_t>(std::nearbyint(c * ratio));
    }
  } else if (num_frames > span - 1) {
    const double avg = static_cast<double>(num_frames - span + 1) / num_clips;
    for (int64_t c = 0; c < num_clips; ++c) starts[c] = static_cast<int64_t>(c * avg + avg / 2.0);
  }
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(num_clips * clip_len));
  for (int64_t s : starts)
    for (int64_t j = 0; j < clip_len; ++j) out.push_back((s + j * frame_interval) % num_frames);
  return out;
}

}  // namespace oar::readers
