#include "readers/video/video_dataset.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/core/error.h"
#include "readers/image/image.h"
#include "readers/image/transform.h"
#include "readers/registry.h"
#include "readers/video/sampling.h"

namespace fs = std::filesystem;

namespace oar::readers {

namespace {

bool parse_int(const std::string& s, int64_t& v) {
  if (s.empty()) return false;
  char* end = nullptr;
  const long long x = std::strtoll(s.c_str(), &end, 10);
  if (!end || *end != '\0') return false;
  v = x;
  return true;
}

// "3" or, with multi, "3,7,12"; false when the text is not such a label.
bool parse_labels(const std::string& s, bool multi, std::vector<int64_t>& out) {
  out.clear();
  std::stringstream ss(s);
  std::string part;
  while (std::getline(ss, part, ',')) {
    int64_t v = 0;
    if (!parse_int(part, v)) return false;
    out.push_back(v);
  }
  if (out.empty() || (!multi && out.size() != 1)) return false;
  return s.back() != ',';
}

std::vector<std::string> split_ws(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream ss(line);
  std::string t;
  while (ss >> t) out.push_back(t);
  return out;
}

std::string join(const std::vector<std::string>& t, size_t begin, size_t end) {
  std::string s;
  for (size_t i = begin; i < end; ++i) s += (i > begin ? " " : "") + t[i];
  return s;
}

}  // namespace

std::vector<VideoEntry> read_video_list(const std::string& list, const std::string& root,
                                        bool frames, bool multi_label) {
  std::ifstream in(list);
  OAR_CHECK(in.good(), list, ": cannot read the video list");
  const fs::path base = root.empty() ? fs::path(list).parent_path() : fs::path(root);
  std::vector<VideoEntry> out;
  int labeled = -1;  // unknown until the first line
  std::string line;
  for (int64_t no = 1; std::getline(in, line); ++no) {
    const auto t = split_ws(line);
    if (t.empty() || t[0][0] == '#') continue;
    VideoEntry e;
    std::vector<int64_t> labels;
    const size_t n = t.size();
    const bool last_is_label = n >= 2 && parse_labels(t[n - 1], multi_label, labels);
    if (frames) {
      int64_t total = 0;
      if (n >= 3 && last_is_label && parse_int(t[n - 2], total)) {
        e.labels = labels;
        e.path = join(t, 0, n - 2);
      } else if (n >= 2 && parse_int(t[n - 1], total)) {
        e.path = join(t, 0, n - 1);
      } else {
        OAR_FAIL(list, ":", no, ": expected `frame_dir total_frames label`, got '", line, "'");
      }
      OAR_CHECK(total >= 1, list, ":", no, ": total_frames must be >= 1, got ", total);
      e.total_frames = total;
    } else if (last_is_label) {
      e.labels = labels;
      e.path = join(t, 0, n - 1);
    } else {
      OAR_CHECK(n == 1 || t[n - 1].find(',') == std::string::npos || multi_label, list, ":", no,
                ": '", t[n - 1], "' looks like several labels; set multi_label: true");
      e.path = join(t, 0, n);
    }
    for (int64_t l : e.labels) OAR_CHECK(l >= 0, list, ":", no, ": negative label ", l);
    const int has = e.labels.empty() ? 0 : 1;
    OAR_CHECK(labeled < 0 || labeled == has, list, ":", no, ": ",
              has ? "a labeled line in a list of unlabeled entries"
                  : "no label (other lines have labels)");
    labeled = has;
    const fs::path p = fs::path(e.path).is_absolute() ? fs::path(e.path) : base / e.path;
    e.path = p.lexically_normal().string();
    out.push_back(std::move(e));
  }
  OAR_CHECK(!out.empty(), list, ": no videos listed");
  return out;
}

std::vector<VideoEntry> resolve_video_input(const std::string& path, bool frames,
                                            bool multi_label) {
  std::error_code ec;
  if (!frames && fs::is_directory(path, ec)) {
    std::vector<VideoEntry> out;
    for (fs::directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec))
      if (it->is_regular_file() && is_video_file(it->path().string()))
        out.push_back({it->path().string(), {}, 0});
    OAR_CHECK(!out.empty(), path, ": no video files in this folder");
    std::sort(out.begin(), out.end(),
              [](const VideoEntry& a, const VideoEntry& b) { return a.path < b.path; });
    return out;
  }
  OAR_CHECK(fs::exists(path, ec), path, ": no such file or directory");
  if (!frames && is_video_file(path)) return {{path, {}, 0}};
  return read_video_list(path, "", frames, multi_label);
}

std::string frame_file_name(const std::string& tmpl, int64_t number) {
  // Python "{}" / "{:05d}" / "{:d}", or printf "%05d" / "%d".
  size_t b = tmpl.find('{'), e = std::string::npos;
  std::string spec;
  if (b != std::string::npos) {
    e = tmpl.find('}', b);
    OAR_CHECK(e != std::string::npos, "filename_tmpl '", tmpl, "': unclosed '{'");
    spec = tmpl.substr(b + 1, e - b - 1);
    if (!spec.empty()) {
      OAR_CHECK(spec[0] == ':' && spec.back() == 'd', "filename_tmpl '", tmpl,
                "': expected {} or {:0Nd}");
      spec = spec.substr(1, spec.size() - 2);
    }
    ++e;
  } else {
    b = tmpl.find('%');
    OAR_CHECK(b != std::string::npos, "filename_tmpl '", tmpl,
              "': no number field (use e.g. img_{:05d}.jpg)");
    e = tmpl.find('d', b);
    OAR_CHECK(e != std::string::npos, "filename_tmpl '", tmpl, "': expected %d or %0Nd");
    spec = tmpl.substr(b + 1, e - b - 1);
    ++e;
  }
  for (char ch : spec)
    OAR_CHECK(ch >= '0' && ch <= '9', "filename_tmpl '", tmpl, "': bad width '", spec, "'");
  OAR_CHECK(spec.size() <= 2, "filename_tmpl '", tmpl, "': width too large");
  const std::string rest = tmpl.substr(e);
  OAR_CHECK(rest.find('{') == std::string::npos && rest.find('%') == std::string::npos,
            "filename_tmpl '", tmpl, "': more than one number field");
  const bool zero = !spec.empty() && spec[0] == '0';
  const int width = spec.empty() ? 0 : std::stoi(spec);
  std::string num = std::to_string(number);
  if (static_cast<int>(num.size()) < width)
    num = std::string(static_cast<size_t>(width) - num.size(), zero ? '0' : ' ') + num;
  return tmpl.substr(0, b) + num + rest;
}

VideoDataset::VideoDataset(std::vector<VideoEntry> entries, VideoDatasetOptions options)
    : entries_(std::move(entries)), o_(std::move(options)) {
  labeled_ = !entries_.empty() && !entries_.front().labels.empty();
  if (o_.frames) frame_file_name(o_.filename_tmpl, o_.start_index);  // validates the template
  if (o_.multi_label && labeled_) {
    OAR_CHECK(o_.num_classes > 0, "video reader: multi_label needs num_classes");
    for (const auto& e : entries_)
      for (int64_t l : e.labels)
        OAR_CHECK(l < o_.num_classes, e.path, ": label ", l, " out of range for num_classes ",
                  o_.num_classes);
  } else if (labeled_ && o_.num_classes > 0) {
    for (const auto& e : entries_)
      OAR_CHECK(e.labels[0] < o_.num_classes, e.path, ": label ", e.labels[0],
                " out of range for num_classes ", o_.num_classes);
  }
}

std::vector<int64_t> VideoDataset::sample_indices(int64_t num_frames, Generator& rng) const {
  const VideoSampling& s = o_.sampling;
  return s.dense ? sample_dense(num_frames, s.clip_len, s.frame_interval, s.num_clips, s.train, rng)
                 : sample_tsn(num_frames, s.seg_num, s.seglen, s.train, rng);
}

namespace {

Image to_image(const VideoFrame& f) {
  Image img(f.height, f.width, 3);
  for (size_t i = 0; i < f.rgb.size(); ++i) img.data[i] = static_cast<float>(f.rgb[i]) / 255.0f;
  return img;
}

void resize_like_decoder(Image& img, const DecodeOptions& d) {
  if (d.height > 0 && d.width > 0) return resize_frame(img, d.height, d.width);
  if (d.short_side <= 0) return;
  const double f =
      static_cast<double>(d.short_side) / static_cast<double>(std::min(img.height, img.width));
  const int64_t h = img.height <= img.width
                        ? d.short_side
                        : std::max<int64_t>(1, static_cast<int64_t>(img.height * f));
  const int64_t w = img.width < img.height
                        ? d.short_side
                        : std::max<int64_t>(1, static_cast<int64_t>(img.width * f));
  resize_frame(img, h, w);
}

}  // namespace

std::vector<Clip> VideoDataset::load_views(const VideoEntry& e, Generator& rng,
                                           std::vector<int64_t>* indices) const {
  std::vector<Image> frames;
  std::vector<int64_t> idx;
  if (o_.frames) {
    std::error_code ec;
    OAR_CHECK(fs::is_directory(e.path, ec), e.path, ": no such frame folder");
    idx = sample_indices(e.total_frames, rng);
    for (int64_t i : idx) {
      const fs::path p = fs::path(e.path) / frame_file_name(o_.filename_tmpl, o_.start_index + i);
      frames.push_back(decode_image(p.string(), 3));
      resize_like_decoder(frames.back(), o_.decode);
    }
  } else {
    VideoDecoder dec(e.path, o_.decode);
    idx = sample_indices(dec.num_frames(), rng);
    for (const VideoFrame& f : dec.decode(idx)) frames.push_back(to_image(f));
  }
  const VideoSampling& s = o_.sampling;
  const size_t per_view = static_cast<size_t>(s.dense ? s.clip_len : s.seg_num * s.seglen);
  std::vector<Clip> views;
  for (size_t b = 0; b < frames.size(); b += per_view)
    views.emplace_back(
        std::make_move_iterator(frames.begin() + static_cast<std::ptrdiff_t>(b)),
        std::make_move_iterator(frames.begin() + static_cast<std::ptrdiff_t>(b + per_view)));
  if (indices) *indices = std::move(idx);
  return views;
}

Example VideoDataset::get(int64_t index, Generator& rng) const {
  const int64_t n = size();
  OAR_CHECK(index >= 0 && index < n, "video dataset: index ", index, " out of range (", n,
            " samples)");
  std::vector<Clip> views;
  std::vector<int64_t> indices;
  int64_t used = index;
  std::string skipped, error;
  const GeneratorState start = rng.state();
  for (int64_t k = 0;; ++k) {
    OAR_CHECK(k < n, "video dataset: no sample could be read (first failure: ", error, ")");
    used = (index + k) % n;
    const VideoEntry& e = entries_[static_cast<size_t>(used)];
    try {
      rng.set_state(start);  // a replacement sample draws as the failed one would have
      views = load_views(e, rng, &indices);
      break;
    } catch (const std::exception& ex) {
      std::string msg = ex.what();
      if (msg.rfind(e.path, 0) != 0) msg = e.path + ": " + msg;
      if (!o_.skip_corrupt) throw Error(msg + " (set corrupt: skip to go on without it)");
      if (skipped.empty()) {
        skipped = e.path;
        error = msg;
      }
      std::lock_guard<std::mutex> lock(reported_mu_);
      if (reported_.insert(e.path).second)
        std::fprintf(stderr, "warning: %s; skipped (corrupt: skip)\n", msg.c_str());
    }
  }
  apply_all(o_.transforms, views, rng);
  const VideoEntry& e = entries_[static_cast<size_t>(used)];
  Example ex;
  ex.fields["video"] = views_to_tensor(views);
  if (labeled_) {
    if (o_.multi_label) {
      Tensor t = zeros({o_.num_classes});
      for (int64_t l : e.labels) t.data<float>()[l] = 1.0f;
      ex.fields["label"] = t;
    } else {
      ex.fields["label"] = scalar_tensor(static_cast<double>(e.labels[0]), DType::i64);
    }
  }
  ex.meta["path"] = e.path;
  Json idx = Json::array();
  for (int64_t i : indices) idx.push_back(i);
  ex.meta["frame_indices"] = idx;
  ex.meta["views"] = static_cast<int64_t>(views.size());
  if (!skipped.empty()) {
    ex.meta["skipped"] = skipped;
    ex.meta["error"] = error;
  }
  return ex;
}

namespace {

SeekMode seek_mode(const std::string& s) {
  return s == "seek"         ? SeekMode::seek
         : s == "sequential" ? SeekMode::sequential
                             : SeekMode::automatic;
}

}  // namespace

void register_video_readers() {
  static bool done = false;
  if (done) return;
  done = true;
  register_clip_transforms();
  Schema s("reader", "video",
           "videos (FFmpeg) or frame folders (OpenCV) from a list file, sampled as TSN segments "
           "or dense clips, through clip transforms");
  s.required_path("list", "the list file; for prediction also a video file or a folder of videos")
      .path("root", "", "folder the listed paths are relative to (default: the list's folder)")
      .key<std::string>("format", "video",
                        "video: `path label` lines of video files; frames: MMAction2's "
                        "`frame_dir total_frames label` lines")
      .choices({"video", "frames"})
      .key<bool>("multi_label", false, "labels are comma lists `l1,l2` (multi-hot f32 targets)")
      .key<int64_t>("num_classes", 0, "classes (required with multi_label; checks labels)")
      .min(0)
      .key<std::string>("filename_tmpl", "img_{:05d}.jpg", "frame file names (format: frames)")
      .key<int64_t>("start_index", 1, "file number of a folder's first frame (format: frames)")
      .min(0)
      .optional<std::string>("sampling",
                             "tsn: seg_num segments of seglen frames; dense: num_clips clips of "
                             "clip_len frames frame_interval apart (default: dense when any of "
                             "those three keys is set, else tsn)")
      .choices({"tsn", "dense"})
      .optional<int64_t>("seg_num", "TSN segments (default 8)")
      .range(1, 4096)
      .optional<int64_t>("seglen", "consecutive frames per TSN segment (default 1)")
      .range(1, 4096)
      .optional<int64_t>("clip_len", "frames per dense clip (default 8)")
      .range(1, 4096)
      .optional<int64_t>("frame_interval", "frames between a dense clip's frames (default 8)")
      .range(1, 4096)
      .optional<int64_t>("num_clips",
                         "dense clips (views) per sample, >1 for multi-view testing (default 1)")
      .range(1, 1024)
      .any("decode_size",
           "scale while decoding (swscale): an integer (short side, aspect kept) or "
           "[height, width]; 0: the stored size")
      .key<int64_t>("decode_threads", 1, "codec threads per video (0: FFmpeg picks)")
      .range(0, 64)
      .key<std::string>("seek", "auto",
                        "auto: sequential when the wanted frames are dense, else seek; seek; "
                        "sequential")
      .choices({"auto", "seek", "sequential"})
      .key<std::string>("corrupt", "fatal",
                        "an unreadable file: fatal (error naming it) or skip (warn once, use the "
                        "next readable sample)")
      .choices({"fatal", "skip"})
      .any("transforms",
           "clip transforms, in order (group_* names in docs/video/readers.md; `oar config doc "
           "NAME`)");
  add_loader_keys(s);
  datasets().add(s, [](const Config& c, const std::string& k, DataContext ctx) {
    VideoDatasetOptions o;
    o.frames = c.get<std::string>(k + ".format") == "frames";
    o.multi_label = c.get<bool>(k + ".multi_label");
    o.num_classes = c.get<int64_t>(k + ".num_classes");
    if (o.multi_label && o.num_classes == 0)
      throw c.error(k + ".num_classes", "multi_label needs num_classes", "e.g. 3862");
    o.filename_tmpl = c.get<std::string>(k + ".filename_tmpl");
    try {
      frame_file_name(o.filename_tmpl, 1);
    } catch (const std::exception& e) {
      throw c.error(k + ".filename_tmpl", e.what(), "e.g. img_{:05d}.jpg");
    }
    o.start_index = c.get<int64_t>(k + ".start_index");
    // TSN or dense: said by `sampling`, else by which family of keys the config sets; keys of
    // the other family are errors rather than silently ignored.
    const std::vector<std::string> tsn_keys = {"seg_num", "seglen"},
                                   dense_keys = {"clip_len", "frame_interval", "num_clips"};
    auto first_set = [&](const std::vector<std::string>& keys) -> std::string {
      for (const auto& key : keys)
        if (c.has(k + "." + key)) return key;
      return "";
    };
    o.sampling.dense = c.has(k + ".sampling") ? c.get<std::string>(k + ".sampling") == "dense"
                                              : !first_set(dense_keys).empty();
    const std::string stray = first_set(o.sampling.dense ? tsn_keys : dense_keys);
    if (!stray.empty())
      throw c.error(
          k + "." + stray,
          stray + " applies to " + (o.sampling.dense ? "tsn" : "dense") +
              " sampling, but this section samples " +
              (o.sampling.dense ? "dense clips" : "TSN segments"),
          "remove it, or set sampling: " + std::string(o.sampling.dense ? "tsn" : "dense"));
    o.sampling.seg_num = c.get<int64_t>(k + ".seg_num", 8);
    o.sampling.seglen = c.get<int64_t>(k + ".seglen", 1);
    o.sampling.clip_len = c.get<int64_t>(k + ".clip_len", 8);
    o.sampling.frame_interval = c.get<int64_t>(k + ".frame_interval", 8);
    o.sampling.num_clips = c.get<int64_t>(k + ".num_clips", 1);
    o.sampling.train = ctx.mode == "train";
    if (c.has(k + ".decode_size")) {
      const YAML::Node n = c.node(k + ".decode_size");
      int64_t v = -1;
      if (!(n.IsScalar() && oar::parse_int(n, v) && v == 0)) {
        const SizeSpec sz = read_size(c, k + ".decode_size");
        if (sz.single)
          o.decode.short_side = sz.height;
        else {
          o.decode.height = sz.height;
          o.decode.width = sz.width;
        }
      }
    }
    o.decode.threads = static_cast<int>(c.get<int64_t>(k + ".decode_threads"));
    o.decode.mode = seek_mode(c.get<std::string>(k + ".seek"));
    o.skip_corrupt = c.get<std::string>(k + ".corrupt") == "skip";
    o.transforms = make_clip_transforms(c, k + ".transforms");
    const std::string list = c.get<std::string>(k + ".list");
    const std::string root = c.get<std::string>(k + ".root", "");
    std::vector<VideoEntry> entries;
    try {
      std::error_code ec;
      entries = (!o.frames && (fs::is_directory(list, ec) || is_video_file(list)))
                    ? resolve_video_input(list, o.frames, o.multi_label)
                    : read_video_list(list, root, o.frames, o.multi_label);
    } catch (const std::exception& e) {
      throw c.error(k + ".list", e.what());
    }
    return std::make_shared<VideoDataset>(std::move(entries), std::move(o));
  });
  set_input_key("video", "list");
}

}  // namespace oar::readers
