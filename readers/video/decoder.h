#pragma once
// Video decoding with FFmpeg (libavformat, libavcodec, libswscale); FFmpeg stays inside the .cpp.
//
// Frames are numbered by their position in presentation order (sorted timestamps), not by
// pts * fps, so variable-frame-rate files index correctly. Opening a file reads its packets once
// (no decoding) to build that index: timestamps and keyframes, hence an exact frame count even
// when the header has none or a wrong one. decode() then seeks to the keyframe before each run of
// wanted frames and decodes forward, or decodes the file in one pass when the wanted frames are
// dense. Containers without presentation times (AVI with B-frames) are decoded by counting frames
// as they come out; for MPEG-4 part 2 the VOP types place the keyframes, so seeking still works.
// Every failure (missing, truncated, corrupt or unsupported file, or a wanted frame that
// cannot be decoded) is an oar::Error whose message starts with the path.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace oar::readers {

struct VideoInfo {
  std::string path;
  std::string container;          // libavformat's short name, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
  std::string codec;              // e.g. "h264"
  int64_t width = 0, height = 0;  // coded size, before rotation
  int64_t frames = 0;             // exact: packets in presentation order (or decoded frames)
  int64_t header_frames = 0;      // what the container claims (0: nothing)
  double fps = 0;                 // average frame rate (frames / duration when the header has none)
  double duration = 0;            // seconds
  int rotation = 0;               // display rotation, clockwise degrees in {0, 90, 180, 270}
};

// One decoded frame: uint8 RGB, row-major [height, width, 3].
struct VideoFrame {
  int64_t index = 0;  // position in presentation order
  double time = 0;    // presentation time in seconds
  int64_t height = 0, width = 0;
  std::vector<uint8_t> rgb;
};

enum class SeekMode {
  automatic,   // sequential when wanted frames are dense, else seek
  seek,        // seek to the keyframe before each run of wanted frames
  sequential,  // one pass from the first frame, never seeking
};

struct DecodeOptions {
  int threads = 1;  // codec threads (0: FFmpeg picks)
  // Output size, straight from swscale: both > 0: exactly height x width; only short_side > 0:
  // the short side becomes short_side, aspect kept; all 0: the stored size. Applies to the frame
  // as displayed (after rotation).
  int64_t height = 0, width = 0, short_side = 0;
  bool apply_rotation = true;  // turn frames upright per the display matrix
  SeekMode mode = SeekMode::automatic;
  // Frames between wanted ones that no other frame refers to (most B-frames) are not decoded.
  // Exact: a wanted frame is always decoded, and reference frames always are.
  bool skip_unwanted = true;
};

class VideoDecoder {
 public:
  // Opens the file and indexes its packets. Throws oar::Error "PATH: ..." on failure.
  explicit VideoDecoder(const std::string& path, DecodeOptions options = {});
  ~VideoDecoder();
  VideoDecoder(const VideoDecoder&) = delete;
  VideoDecoder& operator=(const VideoDecoder&) = delete;

  const VideoInfo& info() const;
  int64_t num_frames() const { return info().frames; }

  // The frames at `indices` (any order, duplicates allowed; each in [0, num_frames())), returned
  // in the order asked. Throws naming the path and the first index that could not be decoded.
  std::vector<VideoFrame> decode(const std::vector<int64_t>& indices);

  // Decodes every frame and returns how many came out (the count a decoder sees, for probing).
  int64_t count_decoded_frames();

  // How many times decode() sought, and how many frames came out of the codec, since opening
  // (for tests of the seek strategy).
  int64_t seeks() const;
  int64_t frames_decoded() const;
  // Packets handed to the codec with "skip if nothing refers to it" (unwanted frames), since
  // opening; the codec decides which of them it can skip (frames_decoded() drops by as many).
  int64_t frames_skipped() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Opens, indexes and (with decode_count) decodes every frame to report the exact count.
VideoInfo probe_video(const std::string& path, bool decode_count = true);

// The extensions the video readers treat as videos (case-insensitive): mp4 avi mkv webm mov m4v
// mpg mpeg flv wmv 3gp ts.
bool is_video_file(const std::string& path);

}  // namespace oar::readers
