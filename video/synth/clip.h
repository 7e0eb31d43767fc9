#pragma once
// One synthetic clip: a filled shape on a noisy background that moves one of two ways (left or
// right, growing or shrinking, clockwise or anticlockwise). The motion's span is drawn first and
// the direction only picks which end the clip starts from, so a clip played backwards is a clip
// of the opposite direction drawn with the same probability: the set of frames carries no order
// information, only their order does.
#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/generator.h"

namespace oar::video::synth {

enum class Motion { translate, scale, rotate };

// circle, square, triangle, diamond, cross, star, hexagon, ring (the first N are used). The
// circle has a notch and the ring a gap, so that every shape shows its rotation.
const std::vector<std::string>& shape_names();
Motion parse_motion(const std::string& name);  // throws naming the allowed motions
const char* motion_name(Motion m);
// The two directions of a motion: {left, right}, {growing, shrinking}, {clockwise, anticlockwise}.
const char* direction_name(Motion m, int direction);

struct ClipParams {
  int shape = 0;
  Motion motion = Motion::translate;
  int direction = 0;        // index into direction_name(motion, .)
  double cx0 = 0, cy0 = 0;  // shape centre at the first frame, pixels
  double cx1 = 0, cy1 = 0;  // ... and at the last frame
  double r0 = 0, r1 = 0;    // circumradius, pixels
  double a0 = 0, a1 = 0;    // rotation, radians (increasing = clockwise on screen, y down)
  uint8_t colour[3] = {255, 255, 255};
  uint8_t background = 0;
  double noise = 0;  // std of per-pixel noise, in 0..255 units
  uint64_t noise_seed = 0;
};

// Draws a clip's geometry and colours for a width x height frame from rng.
ClipParams sample_clip(int shape, Motion motion, int direction, int width, int height, double noise,
                       Generator& rng);

// The same trajectory played backwards: endpoints swapped, direction flipped.
ClipParams reversed(const ClipParams& p);

// frames x height x width x 3 RGB bytes. Frame t sits at t / (frames - 1) of the way from the
// first to the last pose; noise is drawn per (frame, pixel) from noise_seed.
std::vector<uint8_t> render_clip(const ClipParams& p, int frames, int width, int height);

}  // namespace oar::video::synth
