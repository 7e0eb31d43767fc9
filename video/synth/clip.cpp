#include "video/synth/clip.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>

#include "engine/core/error.h"

namespace oar::video::synth {

namespace {

constexpr double kPi = std::numbers::pi;

double uniform(Generator& rng, double lo, double hi) {
  return lo + (hi - lo) * rng.uniform();
}

// Even-odd point-in-polygon for a star-shaped polygon of n * (inner? 2 : 1) vertices.
bool in_polygon(double x, double y, const double* vx, const double* vy, int n) {
  bool in = false;
  for (int i = 0, j = n - 1; i < n; j = i++) {
    if ((vy[i] > y) != (vy[j] > y) && x < (vx[j] - vx[i]) * (y - vy[i]) / (vy[j] - vy[i]) + vx[i])
      in = !in;
  }
  return in;
}

// A regular polygon (or a star, when inner > 0) of circumradius 1, first vertex pointing up.
bool in_regular(double x, double y, int n, double inner) {
  std::array<double, 20> vx{}, vy{};
  const int m = inner > 0 ? 2 * n : n;
  for (int i = 0; i < m; ++i) {
    const double r = (inner > 0 && i % 2 == 1) ? inner : 1.0;
    const double a = -kPi / 2 + 2 * kPi * i / m;
    vx[static_cast<size_t>(i)] = r * std::cos(a);
    vy[static_cast<size_t>(i)] = r * std::sin(a);
  }
  return in_polygon(x, y, vx.data(), vy.data(), m);
}

// Inside test in the shape's own frame (unit circumradius).
bool inside(int shape, double x, double y) {
  switch (shape) {
    case 0:  // a notch near the rim, so that rotation shows
      return x * x + y * y <= 1.0 && x * x + (y + 0.55) * (y + 0.55) > 0.2 * 0.2;
    case 1:
      return std::abs(x) <= 0.75 && std::abs(y) <= 0.75;
    case 2:
      return in_regular(x, y, 3, 0);
    case 3:  // a rhombus, taller than wide: unlike a square at any rotation
      return std::abs(x) / 0.6 + std::abs(y) <= 1.0;
    case 4:
      return (std::abs(x) <= 0.3 && std::abs(y) <= 1.0) ||
             (std::abs(y) <= 0.3 && std::abs(x) <= 1.0);
    case 5:
      return in_regular(x, y, 5, 0.45);
    case 6:
      return in_regular(x, y, 6, 0);
    case 7: {
      const double r2 = x * x + y * y;
      return r2 <= 1.0 && r2 >= 0.55 * 0.55 && !(std::abs(x) < 0.15 && y < 0);  // a gap
    }
  }
  OAR_FAIL("synth: unknown shape index ", shape);
}

}  // namespace

const std::vector<std::string>& shape_names() {
  static const std::vector<std::string> names = {"circle", "square", "triangle", "diamond",
                                                 "cross",  "star",   "hexagon",  "ring"};
  return names;
}

Motion parse_motion(const std::string& name) {
  if (name == "translate") return Motion::translate;
  if (name == "scale") return Motion::scale;
  if (name == "rotate") return Motion::rotate;
  OAR_FAIL("synth: unknown motion '", name, "' (allowed: translate, scale, rotate)");
}

const char* motion_name(Motion m) {
  switch (m) {
    case Motion::translate:
      return "translate";
    case Motion::scale:
      return "scale";
    case Motion::rotate:
      return "rotate";
  }
  return "?";
}

const char* direction_name(Motion m, int d) {
  switch (m) {
    case Motion::translate:
      return d == 0 ? "left" : "right";
    case Motion::scale:
      return d == 0 ? "growing" : "shrinking";
    case Motion::rotate:
      return d == 0 ? "clockwise" : "anticlockwise";
  }
  return "?";
}

ClipParams sample_clip(int shape, Motion motion, int direction, int width, int height, double noise,
                       Generator& rng) {
  OAR_CHECK(shape >= 0 && shape < static_cast<int>(shape_names().size()), "synth: shape ", shape,
            " out of range");
  OAR_CHECK(direction == 0 || direction == 1, "synth: direction must be 0 or 1");
  OAR_CHECK(width >= 16 && height >= 16, "synth: frames must be at least 16x16, got ", width, "x",
            height);
  const double s = std::min(width, height);
  ClipParams p;
  p.shape = shape;
  p.motion = motion;
  p.direction = direction;
  p.noise = noise;
  // Colours: a dark grey background and a bright shape whose colour says nothing of its class.
  p.background = static_cast<uint8_t>(uniform(rng, 20, 80));
  for (auto& c : p.colour) c = static_cast<uint8_t>(uniform(rng, 140, 255));
  p.noise_seed = rng.next_u64();
  // The span of the motion (a lower and an upper end) is drawn without looking at the
  // direction; the direction then only says which end comes first.
  double lo_x = 0, hi_x = 0, lo_r = 0, hi_r = 0, lo_a = 0, hi_a = 0, cy = 0;
  switch (motion) {
    case Motion::translate: {
      const double r = uniform(rng, 0.14, 0.2) * s;
      const double travel = uniform(rng, 0.3, 0.5) * width;
      lo_x = uniform(rng, r + 1, width - r - 1 - travel);
      hi_x = lo_x + travel;
      lo_r = hi_r = r;
      lo_a = hi_a = uniform(rng, 0, 2 * kPi);
      cy = uniform(rng, r + 1, height - r - 1);
      break;
    }
    case Motion::scale: {
      lo_r = uniform(rng, 0.09, 0.14) * s;
      hi_r = lo_r * uniform(rng, 1.7, 2.2);
      lo_x = hi_x = uniform(rng, hi_r + 1, width - hi_r - 1);
      cy = uniform(rng, hi_r + 1, height - hi_r - 1);
      lo_a = hi_a = uniform(rng, 0, 2 * kPi);
      break;
    }
    case Motion::rotate: {
      const double r = uniform(rng, 0.22, 0.32) * s;
      lo_r = hi_r = r;
      lo_x = hi_x = uniform(rng, r + 1, width - r - 1);
      cy = uniform(rng, r + 1, height - r - 1);
      lo_a = uniform(rng, 0, 2 * kPi);
      hi_a = lo_a + uniform(rng, 0.35, 0.6) * kPi;
      break;
    }
  }
  // direction 0 (left, growing, clockwise) and 1 (right, shrinking, anticlockwise)
  const bool start_high = (motion == Motion::translate) ? direction == 0 : direction == 1;
  const bool swap_r = motion == Motion::scale && direction == 1;
  const bool swap_a = motion == Motion::rotate && direction == 1;
  p.cx0 = start_high ? hi_x : lo_x;
  p.cx1 = start_high ? lo_x : hi_x;
  if (motion != Motion::translate) p.cx0 = p.cx1 = lo_x;
  p.cy0 = p.cy1 = cy;
  p.r0 = swap_r ? hi_r : lo_r;
  p.r1 = swap_r ? lo_r : hi_r;
  p.a0 = swap_a ? hi_a : lo_a;
  p.a1 = swap_a ? lo_a : hi_a;
  return p;
}

ClipParams reversed(const ClipParams& p) {
  ClipParams q = p;
  std::swap(q.cx0, q.cx1);
  std::swap(q.cy0, q.cy1);
  std::swap(q.r0, q.r1);
  std::swap(q.a0, q.a1);
  q.direction = 1 - p.direction;
  return q;
}

std::vector<uint8_t> render_clip(const ClipParams& p, int frames, int width, int height) {
  OAR_CHECK(frames >= 2, "synth: a clip needs at least 2 frames, got ", frames);
  const size_t plane = static_cast<size_t>(width) * static_cast<size_t>(height) * 3;
  std::vector<uint8_t> out(plane * static_cast<size_t>(frames));
  constexpr int kSub = 3;  // 3x3 samples per pixel: edges move smoothly between frames
  for (int t = 0; t < frames; ++t) {
    const double u = static_cast<double>(t) / (frames - 1);
    const double cx = p.cx0 + (p.cx1 - p.cx0) * u, cy = p.cy0 + (p.cy1 - p.cy0) * u;
    const double r = p.r0 + (p.r1 - p.r0) * u, a = p.a0 + (p.a1 - p.a0) * u;
    const double ca = std::cos(a), sa = std::sin(a);
    uint8_t* f = out.data() + plane * static_cast<size_t>(t);
    const uint64_t noise_base = static_cast<uint64_t>(t) * plane;
    for (int y = 0; y < height; ++y) {
      for (int x = 0; x < width; ++x) {
        int hits = 0;
        if (std::abs(x + 0.5 - cx) <= r + 1 && std::abs(y + 0.5 - cy) <= r + 1) {
          for (int sy = 0; sy < kSub; ++sy)
            for (int sx = 0; sx < kSub; ++sx) {
              const double dx = x + (sx + 0.5) / kSub - cx, dy = y + (sy + 0.5) / kSub - cy;
              // into the shape's frame: rotate by -a, scale to unit circumradius
              const double lx = (ca * dx + sa * dy) / r, ly = (-sa * dx + ca * dy) / r;
              hits += inside(p.shape, lx, ly) ? 1 : 0;
            }
        }
        const double cover = static_cast<double>(hits) / (kSub * kSub);
        const size_t at =
            (static_cast<size_t>(y) * static_cast<size_t>(width) + static_cast<size_t>(x)) * 3;
        for (int c = 0; c < 3; ++c) {
          double v = p.background * (1 - cover) + p.colour[c] * cover;
          if (p.noise > 0) {
            // sum of 4 uniforms: near-Gaussian with std noise
            double z = 0;
            for (int k = 0; k < 4; ++k)
              z += Generator::to_unit_double(
                  Generator::hash(p.noise_seed, (noise_base + at + c) * 4 + k));
            v += (z - 2.0) * std::sqrt(3.0) * p.noise;
          }
          f[at + c] = static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L));
        }
      }
    }
  }
  return out;
}

}  // namespace oar::video::synth
