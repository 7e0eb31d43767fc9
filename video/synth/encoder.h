#pragma once
// Writes RGB frames to a real video file through FFmpeg's encoders (libavcodec/libavformat).
// libav stays out of this header.
#include <cstdint>
#include <string>

namespace oar::video::synth {

struct EncodeOptions {
  std::string container = "mp4";  // an FFmpeg muxer name: mp4, avi, matroska, webm, mov
  // An encoder name (libx264, mpeg4, libvpx-vp9, mjpeg, ...) or "auto": libx264 for mp4,
  // matroska and mov when FFmpeg has it, else mpeg4; libvpx-vp9 for webm; mpeg4 for avi.
  std::string codec = "auto";
  int fps = 8;
  // Quality: x264's and vp9's CRF, mpeg4's/mjpeg's qscale when that codec is used (lower: better).
  int quality = 18;
};

// The encoder "auto" resolves to for a container (checked against what this FFmpeg has).
std::string resolve_codec(const EncodeOptions& o);

// Encodes `frames` frames of height x width x 3 RGB bytes to `path`, atomically: the file is
// written as `path`.partial and renamed when complete, so an interrupted run never leaves a
// truncated video under the final name. Single-threaded, bit-exact flags: the same frames give
// the same bytes. Throws oar::Error naming the path and FFmpeg's message.
void encode_video(const std::string& path, const uint8_t* rgb, int frames, int width, int height,
                  const EncodeOptions& o);

}  // namespace oar::video::synth
