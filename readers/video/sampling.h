#pragma once
// Which frames of a video a sample uses. Every random draw comes from the sample's generator (the
// loader seeds it from (seed, epoch, index)), so the same seed picks the same frames.
#include <cstdint>
#include <vector>

#include "engine/core/generator.h"

namespace oar::readers {

// A uniform integer in [lo, hi] (both inclusive, like Python's random.randint).
int64_t randint(Generator& rng, int64_t lo, int64_t hi);

// TSN segments as PaddleVideo's KineticsReader samples them: the video is cut into seg_num
// segments of average_dur = num_frames / seg_num frames; each gives `seglen` consecutive frames
// starting at a random offset in [0, average_dur - seglen] (train) or the centred offset
// (average_dur - seglen) / 2 (otherwise). Short videos fall back to i * average_dur, then to i;
// indices wrap modulo num_frames. Returns seg_num * seglen indices, segment-major.
std::vector<int64_t> sample_tsn(int64_t num_frames, int64_t seg_num, int64_t seglen, bool train,
                                Generator& rng);

// Dense clips as MMAction2's SampleFrames takes them (Non-local, I3D): each of num_clips clips is
// clip_len frames frame_interval apart. Train: clip starts spread over the video with a random
// jitter in each of num_clips bins (or sorted random starts when the bins are empty); otherwise:
// the centres of num_clips equal bins (multi-view testing). Indices past the end wrap. Returns
// num_clips * clip_len indices, clip-major.
std::vector<int64_t> sample_dense(int64_t num_frames, int64_t clip_len, int64_t frame_interval,
                                  int64_t num_clips, bool train, Generator& rng);

}  // namespace oar::readers
