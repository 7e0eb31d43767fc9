#include "readers/video/decoder.h"

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstring>
#include <filesystem>
#include <mutex>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/display.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>
}

#include "engine/core/error.h"

namespace oar::readers {

namespace {

// FFmpeg reports problems through av_log; the last error line of this thread goes into our
// error message instead of onto stderr, where it would be noise next to the loader's warnings.
thread_local std::string t_last_log;

void log_to_thread(void* ptr, int level, const char* fmt, va_list vl) {
  if (level > AV_LOG_ERROR) return;
  char line[512];
  int prefix = 0;  // no "[mov @ 0x...]": the message names the file instead
  av_log_format_line2(ptr, level, fmt, vl, line, sizeof(line), &prefix);
  std::string s(line);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  if (!s.empty()) t_last_log = s;
}

void init_ffmpeg() {
  static std::once_flag once;
  std::call_once(once, [] { av_log_set_callback(log_to_thread); });
}

std::string av_error(int code) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(code, buf, sizeof(buf));
  std::string s(buf);
  if (!t_last_log.empty()) s += "; " + t_last_log;
  return s;
}

int normalise_rotation(double ccw_degrees) {
  // The display matrix rotates counter-clockwise; frames are turned clockwise by its opposite.
  long r = std::lround(-ccw_degrees);
  r = ((r % 360) + 360) % 360;
  return static_cast<int>(((r + 45) / 90) * 90 % 360);
}

struct Packet {
  int64_t pts = 0;
  int64_t seek_ts = 0;  // min(dts, pts): seeking by it never lands after the packet
  bool key = false;
  char type = 0;  // MPEG-4 part 2: 'I', 'P', 'B' or 'S' (sprite); 0: unknown or several VOPs
};

// The coding type of the one VOP in an MPEG-4 part 2 packet: the two bits after its start code
// 00 00 01 B6. 0 when there is none, or more than one (DivX "packed" B-frames).
char mpeg4_vop_type(const uint8_t* data, int size) {
  char type = 0;
  for (int i = 0; i + 4 < size; ++i)
    if (data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 && data[i + 3] == 0xB6) {
      if (type != 0) return 0;
      type = "IPBS"[data[i + 4] >> 6];
      i += 4;
    }
  return type;
}

}  // namespace

struct VideoDecoder::Impl {
  std::string path;
  DecodeOptions o;
  VideoInfo info;
  AVFormatContext* fmt = nullptr;
  AVCodecContext* dec = nullptr;
  SwsContext* sws = nullptr;
  AVPacket* pkt = nullptr;
  AVFrame* frame = nullptr;
  int stream = -1;
  double tb = 0;
  std::vector<int64_t> pts;         // presentation order (sorted)
  std::vector<int64_t> key_before;  // per frame: the latest keyframe at or before it
  int64_t first_ts = 0;             // the smallest timestamp of any packet (for rewinding)
  bool by_timestamp = true;         // false: timestamps missing or repeated; count frames
  // When counting: whether seeking works, and per frame (presentation order) the timestamp to
  // seek by when it is a keyframe (its decode time; AVI stores decode order only).
  bool count_seekable = false;
  std::vector<int64_t> key_seek_ts;
  bool decode_order_ts = false;  // timestamps are decode times, one slot per frame (AVI)
  // Decoding position: index of the last frame received since the last seek (-1: none yet).
  int64_t cur = -1;
  int64_t counted = 0;  // frames received since the last rewind (when counting)
  bool at_start = true;
  bool draining = false;
  int64_t seeks = 0;
  int64_t decoded = 0;  // frames out of the decoder since opening
  // While decode() runs: the timestamps of the wanted frames (sorted). Packets of other frames go
  // to the codec with skip_frame = AVDISCARD_NONREF, so a frame nothing refers to (most B-frames)
  // is not decoded at all when nobody wants it; frames that others refer to always are.
  std::vector<int64_t> wanted_pts;
  bool skip_unwanted = false;
  int64_t skipped = 0;  // packets sent with the non-reference skip on, since opening

  ~Impl() { close(); }

  void close() {
    sws_freeContext(sws);
    sws = nullptr;
    av_frame_free(&frame);
    av_packet_free(&pkt);
    avcodec_free_context(&dec);
    avformat_close_input(&fmt);
  }

  [[noreturn]] void fail(const std::string& what) const { OAR_FAIL(path, ": ", what); }

  void open_format() {
    t_last_log.clear();
    int r = avformat_open_input(&fmt, path.c_str(), nullptr, nullptr);
    if (r < 0) fail("cannot open video (" + av_error(r) + ")");
    r = avformat_find_stream_info(fmt, nullptr);
    if (r < 0) fail("cannot read stream information (" + av_error(r) + ")");
    r = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
    if (r < 0) fail("no video stream (" + av_error(r) + ")");
    stream = r;
    for (unsigned i = 0; i < fmt->nb_streams; ++i)
      if (static_cast<int>(i) != stream) fmt->streams[i]->discard = AVDISCARD_ALL;
  }

  void open() {
    init_ffmpeg();
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) fail("no such video file");
    if (!std::filesystem::is_regular_file(path, ec)) fail("not a file (a folder or a device)");
    open_format();
    AVStream* st = fmt->streams[stream];
    const AVCodec* codec = avcodec_find_decoder(st->codecpar->codec_id);
    if (!codec)
      fail(std::string("unsupported codec '") + avcodec_get_name(st->codecpar->codec_id) +
           "' (no decoder in this FFmpeg)");
    dec = avcodec_alloc_context3(codec);
    OAR_CHECK(dec, path, ": out of memory");
    int r = avcodec_parameters_to_context(dec, st->codecpar);
    if (r < 0) fail("bad codec parameters (" + av_error(r) + ")");
    dec->thread_count = std::max(0, o.threads);
    dec->thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE;
    dec->pkt_timebase = st->time_base;
    r = avcodec_open2(dec, codec, nullptr);
    if (r < 0)
      fail("cannot open the " + std::string(codec->name) + " decoder (" + av_error(r) + ")");
    pkt = av_packet_alloc();
    frame = av_frame_alloc();
    OAR_CHECK(pkt && frame, path, ": out of memory");
    if (st->codecpar->width <= 0 || st->codecpar->height <= 0) fail("video stream has no size");

    info.path = path;
    info.container = fmt->iformat->name;
    info.codec = avcodec_get_name(st->codecpar->codec_id);
    info.width = st->codecpar->width;
    info.height = st->codecpar->height;
    info.header_frames = std::max<int64_t>(0, st->nb_frames);
    tb = av_q2d(st->time_base);
    size_t size = 0;
    const uint8_t* m = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, &size);
    if (m && size >= 9 * sizeof(int32_t))
      info.rotation =
          normalise_rotation(av_display_rotation_get(reinterpret_cast<const int32_t*>(m)));
    build_index();
    if (info.frames == 0) fail("no decodable video frames (empty or truncated file)");
    if (st->duration != AV_NOPTS_VALUE && st->duration > 0)
      info.duration = static_cast<double>(st->duration) * tb;
    else if (fmt->duration != AV_NOPTS_VALUE && fmt->duration > 0)
      info.duration = static_cast<double>(fmt->duration) / AV_TIME_BASE;
    if (st->avg_frame_rate.num > 0 && st->avg_frame_rate.den > 0)
      info.fps = av_q2d(st->avg_frame_rate);
    else if (info.duration > 0)
      info.fps = static_cast<double>(info.frames) / info.duration;
    else if (st->r_frame_rate.num > 0 && st->r_frame_rate.den > 0)
      info.fps = av_q2d(st->r_frame_rate);
    if (info.duration <= 0 && info.fps > 0)
      info.duration = static_cast<double>(info.frames) / info.fps;
    rewind();
  }

  // One pass over the packets (no decoding): timestamps and keyframes in presentation order.
  void build_index() {
    std::vector<Packet> packets;
    int64_t last_dur = 0;
    bool missing_pts = false;
    const bool mpeg4 = fmt->streams[stream]->codecpar->codec_id == AV_CODEC_ID_MPEG4;
    while (true) {
      const int r = av_read_frame(fmt, pkt);
      if (r < 0) break;  // end of file, or a truncated tail: the packets read so far count
      if (pkt->stream_index == stream && pkt->size > 0 && !(pkt->flags & AV_PKT_FLAG_DISCARD)) {
        Packet p;
        const int64_t ts = pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts;
        if (ts == AV_NOPTS_VALUE) by_timestamp = false;
        if (pkt->pts == AV_NOPTS_VALUE) missing_pts = true;
        if (mpeg4) p.type = mpeg4_vop_type(pkt->data, pkt->size);
        p.pts = ts == AV_NOPTS_VALUE ? static_cast<int64_t>(packets.size()) : ts;
        p.seek_ts = pkt->dts != AV_NOPTS_VALUE ? std::min(pkt->dts, p.pts) : p.pts;
        p.key = (pkt->flags & AV_PKT_FLAG_KEY) != 0;
        last_dur = pkt->duration;
        packets.push_back(p);
      }
      av_packet_unref(pkt);
    }
    // Packets without a presentation time (AVI with B-frames: the container keeps decode order
    // and libavformat guesses pts only for some packets) cannot be put in presentation order by
    // timestamp: frames are counted as they come out instead. Seeking then needs each
    // keyframe's place in presentation order, which MPEG-4 part 2 gives from the VOP types.
    if (missing_pts && by_timestamp) {
      by_timestamp = false;
      decode_order_ts = true;
      if (mpeg4) index_decode_order(packets);
    }
    std::stable_sort(packets.begin(), packets.end(),
                     [](const Packet& a, const Packet& b) { return a.pts < b.pts; });
    const size_t n = packets.size();
    pts.resize(n);
    key_before.resize(n);
    int64_t key = 0;
    for (size_t i = 0; i < n; ++i) {
      pts[i] = packets[i].pts;
      if (i > 0 && pts[i] == pts[i - 1]) by_timestamp = false;
      if (packets[i].key) key = static_cast<int64_t>(i);
      key_before[i] = key;
      first_ts = i == 0 ? packets[i].seek_ts : std::min(first_ts, packets[i].seek_ts);
    }
    if (count_seekable) {  // keyframes by their place in presentation order
      key = 0;
      for (size_t i = 0; i < n; ++i) {
        if (key_seek_ts[i] != AV_NOPTS_VALUE) key = static_cast<int64_t>(i);
        key_before[i] = key;
      }
      count_seekable = key_seek_ts[0] != AV_NOPTS_VALUE;  // frame 0 starts a run
    }
    info.frames = static_cast<int64_t>(n);
    if (n > 0 && fmt->duration == AV_NOPTS_VALUE &&
        fmt->streams[stream]->duration == AV_NOPTS_VALUE)
      info.duration = static_cast<double>(pts.back() - pts.front() + last_dur) * tb;
  }

  // From packets in decode order whose timestamps are decode positions: where each frame shows.
  // An I/P/S-VOP shows after the B-VOPs that follow it in decode order (MPEG-4 part 2 B-VOPs
  // are never references). Leaves seeking off when a type is unknown or a timestamp is missing.
  void index_decode_order(const std::vector<Packet>& packets) {
    const size_t n = packets.size();
    std::vector<int64_t> pres_of(n, -1);
    int64_t shown = 0;
    int64_t pending = -1;  // the anchor not yet shown
    for (size_t i = 0; i < n; ++i) {
      const char t = packets[i].type;
      if (t == 0) return;
      if (t == 'B') {
        pres_of[i] = shown++;
      } else {
        if (pending >= 0) pres_of[static_cast<size_t>(pending)] = shown++;
        pending = static_cast<int64_t>(i);
      }
    }
    if (pending >= 0) pres_of[static_cast<size_t>(pending)] = shown++;
    key_seek_ts.assign(n, AV_NOPTS_VALUE);
    bool any_key = false;
    for (size_t i = 0; i < n; ++i)
      if (packets[i].key) {
        key_seek_ts[static_cast<size_t>(pres_of[i])] = packets[i].seek_ts;
        any_key = true;
      }
    count_seekable = any_key;
  }

  void reopen() {
    avformat_close_input(&fmt);
    open_format();
    avcodec_flush_buffers(dec);
  }

  // Back to the first frame: a seek to the first packet, or, when the container refuses, a
  // fresh open.
  void rewind() {
    t_last_log.clear();
    if (av_seek_frame(fmt, stream, first_ts, AVSEEK_FLAG_BACKWARD) < 0) {
      reopen();
    } else {
      avcodec_flush_buffers(dec);
    }
    cur = -1;
    counted = 0;
    draining = false;
    at_start = true;
  }

  void seek_to_key(int64_t k) {
    ++seeks;
    at_start = false;
    // By presentation time: containers that index by decode time may land a keyframe early,
    // which costs decoding but never a wrong frame; one that lands late is caught in decode().
    // When counting: by the keyframe's decode time, and the count goes on from its place.
    const int64_t ts =
        by_timestamp ? pts[static_cast<size_t>(k)] : key_seek_ts[static_cast<size_t>(k)];
    if (av_seek_frame(fmt, stream, ts, AVSEEK_FLAG_BACKWARD) < 0) return rewind();
    avcodec_flush_buffers(dec);
    cur = -1;
    counted = k;
    draining = false;
  }

  // The next frame in presentation order into `frame`; false at the end of the stream. Packets
  // the decoder rejects are skipped (as the ffmpeg tool does); their frames never come out.
  bool next_frame() {
    while (true) {
      int r = avcodec_receive_frame(dec, frame);
      if (r == 0) {
        ++decoded;
        return true;
      }
      if (r == AVERROR_EOF) return false;
      if (r != AVERROR(EAGAIN)) fail("decoding failed (" + av_error(r) + ")");
      if (draining) return false;
      r = av_read_frame(fmt, pkt);
      if (r < 0) {
        avcodec_send_packet(dec, nullptr);
        draining = true;
        continue;
      }
      if (pkt->stream_index == stream) {
        if (skip_unwanted) {
          const int64_t ts = pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts;
          const bool want =
              ts == AV_NOPTS_VALUE || std::binary_search(wanted_pts.begin(), wanted_pts.end(), ts);
          dec->skip_frame = want ? AVDISCARD_DEFAULT : AVDISCARD_NONREF;
          if (!want) ++skipped;
        }
        avcodec_send_packet(dec, pkt);
      }
      av_packet_unref(pkt);
    }
  }

  // The presentation index of the frame just received.
  int64_t frame_index() {
    if (!by_timestamp) return counted++;
    int64_t ts = frame->best_effort_timestamp;
    if (ts == AV_NOPTS_VALUE) ts = frame->pts;
    if (ts == AV_NOPTS_VALUE) return cur + 1;
    auto it = std::lower_bound(pts.begin(), pts.end(), ts);
    if (it == pts.end()) return static_cast<int64_t>(pts.size()) - 1;
    if (*it != ts && it != pts.begin() && ts - *(it - 1) < *it - ts) --it;
    return static_cast<int64_t>(it - pts.begin());
  }

  VideoFrame convert(int64_t index) {
    const int rot = o.apply_rotation ? info.rotation : 0;
    const bool swap = rot == 90 || rot == 270;
    const int64_t fw = frame->width, fh = frame->height;
    const int64_t dw = swap ? fh : fw, dh = swap ? fw : fh;  // as displayed
    int64_t th = dh, tw = dw;
    if (o.height > 0 && o.width > 0) {
      th = o.height;
      tw = o.width;
    } else if (o.short_side > 0) {
      const double f = static_cast<double>(o.short_side) / static_cast<double>(std::min(dh, dw));
      th = dh <= dw ? o.short_side : std::max<int64_t>(1, static_cast<int64_t>(dh * f));
      tw = dw < dh ? o.short_side : std::max<int64_t>(1, static_cast<int64_t>(dw * f));
    }
    const int64_t sh = swap ? tw : th, sw = swap ? th : tw;  // before rotation
    sws = sws_getCachedContext(sws, static_cast<int>(fw), static_cast<int>(fh),
                               static_cast<AVPixelFormat>(frame->format), static_cast<int>(sw),
                               static_cast<int>(sh), AV_PIX_FMT_RGB24, SWS_BILINEAR, nullptr,
                               nullptr, nullptr);
    if (!sws) fail("cannot convert frames of this pixel format to RGB");
    std::vector<uint8_t> rgb(static_cast<size_t>(sh * sw * 3));
    uint8_t* dst[4] = {rgb.data(), nullptr, nullptr, nullptr};
    int stride[4] = {static_cast<int>(sw * 3), 0, 0, 0};
    sws_scale(sws, frame->data, frame->linesize, 0, static_cast<int>(fh), dst, stride);
    VideoFrame out;
    out.index = index;
    // With decode-order timestamps the frame's own is a guess; the n-th slot's time is exact.
    int64_t ts = decode_order_ts ? pts[static_cast<size_t>(index)] : frame->best_effort_timestamp;
    out.time = ts == AV_NOPTS_VALUE ? 0.0 : static_cast<double>(ts) * tb;
    out.height = th;
    out.width = tw;
    if (rot == 0) {
      out.rgb = std::move(rgb);
      return out;
    }
    out.rgb.resize(rgb.size());
    for (int64_t y = 0; y < th; ++y)
      for (int64_t x = 0; x < tw; ++x) {
        int64_t sy, sx;  // source pixel of output (y, x), clockwise rotation by `rot`
        if (rot == 90) {
          sy = sh - 1 - x;
          sx = y;
        } else if (rot == 180) {
          sy = sh - 1 - y;
          sx = sw - 1 - x;
        } else {
          sy = x;
          sx = sw - 1 - y;
        }
        std::memcpy(&out.rgb[static_cast<size_t>((y * tw + x) * 3)],
                    &rgb[static_cast<size_t>((sy * sw + sx) * 3)], 3);
      }
    return out;
  }

  // Frames decoded by each strategy, to pick the cheaper: a seek restarts at the keyframe before
  // a wanted frame unless decoding on from the current position gets there without passing one.
  bool prefer_seek(const std::vector<int64_t>& wanted) const {
    int64_t pos = -1, cost = 0;
    for (int64_t w : wanted) {
      const int64_t k = key_before[static_cast<size_t>(w)];
      cost += (pos >= k && pos < w) ? w - pos : w - k + 2;  // a seek costs about a frame
      pos = w;
    }
    return cost < wanted.back() + 1;
  }

  std::vector<VideoFrame> decode(const std::vector<int64_t>& indices) {
    t_last_log.clear();
    const int64_t n = info.frames;
    for (int64_t i : indices)
      if (i < 0 || i >= n)
        fail("frame index " + std::to_string(i) + " out of range (" + std::to_string(n) +
             " frames)");
    std::vector<int64_t> wanted(indices);
    std::sort(wanted.begin(), wanted.end());
    wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
    std::vector<VideoFrame> got(wanted.size());
    if (wanted.empty()) return {};
    bool seek = o.mode == SeekMode::seek || (o.mode == SeekMode::automatic && prefer_seek(wanted));
    if (!by_timestamp && !count_seekable) seek = false;  // only counting from the start works
    if (!seek && !at_start) rewind();
    // Frames are found by timestamp, so frames that never come out do not shift the count.
    skip_unwanted = by_timestamp && o.skip_unwanted;
    wanted_pts.clear();
    for (int64_t w : wanted) wanted_pts.push_back(pts[static_cast<size_t>(w)]);
    struct SkipOff {  // decoding outside decode() (probing, counting) skips nothing
      Impl* d;
      ~SkipOff() {
        d->skip_unwanted = false;
        d->dec->skip_frame = AVDISCARD_DEFAULT;
      }
    } skip_off{this};
    size_t next = 0;
    while (next < wanted.size()) {
      const int64_t w = wanted[next];
      const int64_t k = key_before[static_cast<size_t>(w)];
      if (seek && !(cur >= k && cur < w)) seek_to_key(k);
      int64_t target_key = k;
      bool first = true;
      while (next < wanted.size()) {
        const bool more = next_frame();
        const int64_t idx = more ? frame_index() : -1;
        if (skip_unwanted && (!more || (idx > wanted[next] && !(first && seek)))) {
          // The wanted frame never came out: its packet's timestamp was not the frame's (a
          // container that stores decode order only). Decode this run again, skipping nothing.
          skip_unwanted = false;
          dec->skip_frame = AVDISCARD_DEFAULT;
          const int64_t key = key_before[static_cast<size_t>(wanted[next])];
          if (seek) {
            seek_to_key(key);
          } else {
            rewind();
          }
          target_key = key;
          first = true;
          continue;
        }
        if (!more)
          fail("frame " + std::to_string(wanted[next]) + " could not be decoded (stream ended" +
               (t_last_log.empty() ? "" : "; " + t_last_log) + ")");
        if (first && seek && idx > wanted[next]) {
          // The container's seek landed past the frame: retry from an earlier keyframe.
          if (target_key == 0) {
            rewind();
            seek = false;
          } else {
            target_key = key_before[static_cast<size_t>(target_key - 1)];
            seek_to_key(target_key);
          }
          continue;
        }
        first = false;
        cur = idx;
        if (idx > wanted[next])
          fail("frame " + std::to_string(wanted[next]) + " could not be decoded (corrupt data" +
               (t_last_log.empty() ? "" : "; " + t_last_log) + ")");
        if (idx < wanted[next]) continue;
        got[next++] = convert(idx);
        if (seek && next < wanted.size() && key_before[static_cast<size_t>(wanted[next])] > cur)
          break;  // a later keyframe is closer than decoding on
      }
    }
    at_start = false;
    std::vector<VideoFrame> out;
    out.reserve(indices.size());
    for (int64_t i : indices) {
      const size_t j =
          static_cast<size_t>(std::lower_bound(wanted.begin(), wanted.end(), i) - wanted.begin());
      out.push_back(got[j]);
    }
    return out;
  }

  int64_t count_decoded() {
    rewind();
    int64_t c = 0;
    while (next_frame()) ++c;
    at_start = false;
    return c;
  }
};

VideoDecoder::VideoDecoder(const std::string& path, DecodeOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  impl_->o = options;
  impl_->open();
}

VideoDecoder::~VideoDecoder() = default;

const VideoInfo& VideoDecoder::info() const {
  return impl_->info;
}

std::vector<VideoFrame> VideoDecoder::decode(const std::vector<int64_t>& indices) {
  return impl_->decode(indices);
}

int64_t VideoDecoder::count_decoded_frames() {
  return impl_->count_decoded();
}

int64_t VideoDecoder::seeks() const {
  return impl_->seeks;
}

int64_t VideoDecoder::frames_decoded() const {
  return impl_->decoded;
}

int64_t VideoDecoder::frames_skipped() const {
  return impl_->skipped;
}

VideoInfo probe_video(const std::string& path, bool decode_count) {
  VideoDecoder d(path);
  VideoInfo info = d.info();
  if (decode_count) info.frames = d.count_decoded_frames();
  if (info.frames == 0) OAR_FAIL(path, ": no decodable video frames");
  return info;
}

bool is_video_file(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char ch) { return std::tolower(ch); });
  for (const char* e : {".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv",
                        ".wmv", ".3gp", ".ts"})
    if (ext == e) return true;
  return false;
}

}  // namespace oar::readers
