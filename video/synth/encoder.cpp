#include "video/synth/encoder.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <vector>

#include "engine/core/error.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/error.h>
#include <libavutil/log.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
}

namespace fs = std::filesystem;

namespace oar::video::synth {

namespace {

std::string av_text(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(err, buf, sizeof(buf));
  return buf;
}

struct Output {
  AVFormatContext* fmt = nullptr;
  AVCodecContext* codec = nullptr;
  AVFrame* frame = nullptr;
  AVPacket* packet = nullptr;
  SwsContext* sws = nullptr;
  bool io_open = false;
  ~Output() {
    sws_freeContext(sws);
    av_packet_free(&packet);
    av_frame_free(&frame);
    avcodec_free_context(&codec);
    if (fmt) {
      if (io_open) avio_closep(&fmt->pb);
      avformat_free_context(fmt);
    }
  }
};

// Moves every packet the encoder has ready into the file.
void drain(Output& o, AVStream* st, const std::string& path) {
  for (;;) {
    int rc = avcodec_receive_packet(o.codec, o.packet);
    if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return;
    OAR_CHECK(rc >= 0, path, ": encoding failed (", av_text(rc), ")");
    av_packet_rescale_ts(o.packet, o.codec->time_base, st->time_base);
    o.packet->stream_index = st->index;
    rc = av_interleaved_write_frame(o.fmt, o.packet);
    OAR_CHECK(rc >= 0, path, ": writing a packet failed (", av_text(rc), ")");
  }
}

}  // namespace

std::string resolve_codec(const EncodeOptions& o) {
  std::string name = o.codec;
  if (name == "auto") {
    if (o.container == "webm")
      name = "libvpx-vp9";
    else if (o.container == "avi")
      name = "mpeg4";
    else
      name = avcodec_find_encoder_by_name("libx264") ? "libx264" : "mpeg4";
  }
  OAR_CHECK(avcodec_find_encoder_by_name(name.c_str()), "synth: this FFmpeg has no encoder '", name,
            "' (see `ffmpeg -encoders`)");
  return name;
}

namespace {

void encode_partial(const std::string& path, const std::string& partial, const uint8_t* rgb,
                    int frames, int width, int height, const EncodeOptions& eo) {
  OAR_CHECK(frames >= 1, path, ": no frames to encode");
  OAR_CHECK(width % 2 == 0 && height % 2 == 0, path,
            ": width and height must be even for yuv420p, got ", width, "x", height);
  OAR_CHECK(eo.fps >= 1, path, ": fps must be at least 1");
  const std::string codec_name = resolve_codec(eo);
  const AVCodec* codec = avcodec_find_encoder_by_name(codec_name.c_str());
  const AVOutputFormat* ofmt = av_guess_format(eo.container.c_str(), nullptr, nullptr);
  OAR_CHECK(ofmt, "synth: this FFmpeg has no muxer '", eo.container,
            "' (try mp4, avi, matroska, webm, mov)");
  Output o;
  int rc = avformat_alloc_output_context2(&o.fmt, ofmt, nullptr, partial.c_str());
  OAR_CHECK(rc >= 0 && o.fmt, path, ": cannot create the ", eo.container, " muxer (", av_text(rc),
            ")");
  o.fmt->flags |= AVFMT_FLAG_BITEXACT;
  AVStream* st = avformat_new_stream(o.fmt, nullptr);
  OAR_CHECK(st, path, ": cannot add a video stream");
  o.codec = avcodec_alloc_context3(codec);
  OAR_CHECK(o.codec, path, ": cannot allocate the ", codec_name, " encoder");
  AVCodecContext* c = o.codec;
  c->width = width;
  c->height = height;
  c->time_base = AVRational{1, eo.fps};
  c->framerate = AVRational{eo.fps, 1};
  c->pix_fmt = codec->id == AV_CODEC_ID_MJPEG ? AV_PIX_FMT_YUVJ420P : AV_PIX_FMT_YUV420P;
  c->gop_size = 12;
  c->thread_count = 1;  // one thread: the output bytes do not depend on the machine
  c->flags |= AV_CODEC_FLAG_BITEXACT;
  if (o.fmt->oformat->flags & AVFMT_GLOBALHEADER) c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  AVDictionary* opts = nullptr;
  if (codec_name == "libx264" || codec_name == "libx264rgb") {
    av_dict_set(&opts, "preset", "veryfast", 0);
    av_dict_set_int(&opts, "crf", eo.quality, 0);
    // Adaptive quantization and macroblock-tree rate control made libx264 (0.164, AVX-512
    // paths) give different bytes for the same frames from one run to the next in one
    // process; without them the output is a function of the frames alone.
    av_dict_set(&opts, "x264-params", "aq-mode=0:mbtree=0", 0);
  } else if (codec_name == "libvpx-vp9") {
    av_dict_set_int(&opts, "crf", eo.quality, 0);
    c->bit_rate = 0;
    av_dict_set(&opts, "deadline", "realtime", 0);
    av_dict_set_int(&opts, "cpu-used", 8, 0);
  } else {
    // qscale for mpeg4, mjpeg and the like; 18 on the x264 scale maps to about 3
    c->flags |= AV_CODEC_FLAG_QSCALE;
    c->global_quality = FF_QP2LAMBDA * std::max(1, eo.quality / 6);
  }
  rc = avcodec_open2(c, codec, &opts);
  av_dict_free(&opts);
  OAR_CHECK(rc >= 0, path, ": cannot open the ", codec_name, " encoder (", av_text(rc), ")");
  rc = avcodec_parameters_from_context(st->codecpar, c);
  OAR_CHECK(rc >= 0, path, ": cannot set the stream parameters (", av_text(rc), ")");
  st->time_base = c->time_base;
  st->avg_frame_rate = c->framerate;

  rc = avio_open(&o.fmt->pb, partial.c_str(), AVIO_FLAG_WRITE);
  OAR_CHECK(rc >= 0, partial, ": cannot open for writing (", av_text(rc), ")");
  o.io_open = true;
  rc = avformat_write_header(o.fmt, nullptr);
  OAR_CHECK(rc >= 0, path, ": cannot write the ", eo.container, " header (", av_text(rc), ")");

  o.packet = av_packet_alloc();
  OAR_CHECK(o.packet, path, ": out of memory");
  o.sws = sws_getContext(width, height, AV_PIX_FMT_RGB24, width, height, c->pix_fmt,
                         SWS_BICUBIC | SWS_ACCURATE_RND | SWS_BITEXACT, nullptr, nullptr, nullptr);
  OAR_CHECK(o.sws, path, ": cannot create the RGB to YUV converter");
  const size_t plane = static_cast<size_t>(width) * static_cast<size_t>(height) * 3;
  std::vector<uint8_t> staging(plane + 64, 0);
  for (int t = 0; t < frames; ++t) {
    // A fresh, zeroed frame each time: encoders may keep a reference to the last one, and
    // some read the padding past the visible width, which must not be leftover heap bytes
    // (the output would then differ from run to run).
    av_frame_free(&o.frame);
    o.frame = av_frame_alloc();
    OAR_CHECK(o.frame, path, ": out of memory");
    o.frame->format = c->pix_fmt;
    o.frame->width = width;
    o.frame->height = height;
    rc = av_frame_get_buffer(o.frame, 0);
    OAR_CHECK(rc >= 0, path, ": cannot allocate a frame (", av_text(rc), ")");
    for (AVBufferRef* buf : o.frame->buf)
      if (buf) std::memset(buf->data, 0, buf->size);
    // swscale's SIMD readers load up to 16 bytes past the last pixel: convert from a copy
    // with zeroed slack, so that bytes after the caller's buffer never reach the output.
    std::memcpy(staging.data(), rgb + plane * static_cast<size_t>(t), plane);
    const uint8_t* src[1] = {staging.data()};
    const int stride[1] = {3 * width};
    sws_scale(o.sws, src, stride, 0, height, o.frame->data, o.frame->linesize);
    o.frame->pts = t;
    rc = avcodec_send_frame(c, o.frame);
    OAR_CHECK(rc >= 0, path, ": encoding frame ", t, " failed (", av_text(rc), ")");
    drain(o, st, path);
  }
  rc = avcodec_send_frame(c, nullptr);
  OAR_CHECK(rc >= 0, path, ": flushing the encoder failed (", av_text(rc), ")");
  drain(o, st, path);
  rc = av_write_trailer(o.fmt);
  OAR_CHECK(rc >= 0, path, ": cannot write the trailer (", av_text(rc), ")");
  rc = avio_closep(&o.fmt->pb);
  o.io_open = false;
  OAR_CHECK(rc >= 0, partial, ": cannot close (", av_text(rc), ")");
  // Durable before the rename publishes it.
  const int fd = ::open(partial.c_str(), O_RDONLY);
  OAR_CHECK(fd >= 0, partial, ": cannot reopen to sync");
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  OAR_CHECK(synced, partial, ": cannot sync to disk");
}

}  // namespace

void encode_video(const std::string& path, const uint8_t* rgb, int frames, int width, int height,
                  const EncodeOptions& eo) {
  // libav logs every encoder's statistics at info level; keep warnings and errors only.
  if (av_log_get_level() > AV_LOG_WARNING) av_log_set_level(AV_LOG_WARNING);
  const std::string partial = path + ".partial";
  try {
    encode_partial(path, partial, rgb, frames, width, height, eo);
  } catch (...) {
    std::error_code ignored;
    fs::remove(partial, ignored);
    throw;
  }
  std::error_code ec;
  fs::rename(partial, path, ec);
  if (ec) {
    fs::remove(partial);
    OAR_FAIL(path, ": cannot move the finished file into place (", ec.message(), ")");
  }
}

}  // namespace oar::video::synth
