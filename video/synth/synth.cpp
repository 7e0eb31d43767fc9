#include "video/synth/synth.h"

#include <cstdio>
#include <filesystem>
#include <sstream>

#include "engine/core/error.h"
#include "engine/io/atomic_file.h"
#include "engine/io/json.h"

namespace fs = std::filesystem;

namespace oar::video::synth {

namespace {

const char* kSplits[] = {"train", "valid", "test"};

std::string extension_for(const std::string& container) {
  if (container == "matroska") return ".mkv";
  if (container == "mpegts") return ".ts";
  return "." + container;
}

void check_options(const SynthOptions& o) {
  OAR_CHECK(!o.out_dir.empty(), "synth: no output directory given");
  const int max_shapes = static_cast<int>(shape_names().size());
  OAR_CHECK(o.num_shapes >= 1 && o.num_shapes <= max_shapes, "synth: num_shapes must be 1..",
            max_shapes, ", got ", o.num_shapes);
  OAR_CHECK(!o.motions.empty(), "synth: at least one motion (translate, scale, rotate)");
  for (const auto& m : o.motions) parse_motion(m);
  OAR_CHECK(!o.labels.empty(), "synth: at least one label kind (appearance, order, combined)");
  for (const auto& l : o.labels)
    OAR_CHECK(l == "appearance" || l == "order" || l == "combined", "synth: unknown label kind '",
              l, "' (allowed: appearance, order, combined)");
  OAR_CHECK(o.frames >= 2 && o.frames <= 10000, "synth: frames must be 2..10000, got ", o.frames);
  OAR_CHECK(o.width >= 16 && o.height >= 16 && o.width <= 4096 && o.height <= 4096,
            "synth: size must be 16x16..4096x4096, got ", o.width, "x", o.height);
  OAR_CHECK(o.width % 2 == 0 && o.height % 2 == 0, "synth: width and height must be even, got ",
            o.width, "x", o.height);
  OAR_CHECK(o.train >= 0 && o.valid >= 0 && o.test >= 0, "synth: clip counts must be >= 0");
  OAR_CHECK(o.noise >= 0 && o.noise <= 128, "synth: noise must be 0..128, got ", o.noise);
}

int64_t label_of(const ClipLabels& l, const std::string& kind) {
  return kind == "appearance" ? l.appearance : kind == "order" ? l.order : l.combined;
}

}  // namespace

std::vector<std::string> class_names(const SynthOptions& o, const std::string& kind) {
  std::vector<std::string> order;
  for (const auto& m : o.motions)
    for (int d = 0; d < 2; ++d) order.push_back(direction_name(parse_motion(m), d));
  if (kind == "order") return order;
  std::vector<std::string> shapes(shape_names().begin(), shape_names().begin() + o.num_shapes);
  if (kind == "appearance") return shapes;
  OAR_CHECK(kind == "combined", "synth: unknown label kind '", kind, "'");
  std::vector<std::string> out;
  for (const auto& s : shapes)
    for (const auto& d : order) out.push_back(s + "_" + d);
  return out;
}

std::vector<ClipPlan> plan_clips(const SynthOptions& o) {
  check_options(o);
  const int64_t num_orders = 2 * static_cast<int64_t>(o.motions.size());
  const int64_t num_combined = o.num_shapes * num_orders;
  const std::string ext = extension_for(o.encode.container);
  std::vector<ClipPlan> plans;
  const int64_t counts[] = {o.train, o.valid, o.test};
  for (int s = 0; s < 3; ++s) {
    for (int64_t i = 0; i < counts[s]; ++i) {
      ClipPlan p;
      p.split = kSplits[s];
      p.index = i;
      char name[64];
      std::snprintf(name, sizeof(name), "%s/clip_%06lld%s", kSplits[s], static_cast<long long>(i),
                    ext.c_str());
      p.path = name;
      // Balanced classes in a fixed cycle; the geometry is random.
      p.labels.combined = i % num_combined;
      p.labels.appearance = p.labels.combined / num_orders;
      p.labels.order = p.labels.combined % num_orders;
      Generator rng(
          Generator::hash(o.seed, (static_cast<uint64_t>(s) << 40) | static_cast<uint64_t>(i)));
      const Motion motion = parse_motion(o.motions[static_cast<size_t>(p.labels.order / 2)]);
      p.params = sample_clip(static_cast<int>(p.labels.appearance), motion,
                             static_cast<int>(p.labels.order % 2), o.width, o.height, o.noise, rng);
      plans.push_back(std::move(p));
    }
  }
  return plans;
}

SynthSummary synthesize(const SynthOptions& o,
                        const std::function<void(int64_t, int64_t)>& progress) {
  std::vector<ClipPlan> plans = plan_clips(o);
  const fs::path root(o.out_dir);
  std::error_code ec;
  if (fs::exists(root, ec)) {
    OAR_CHECK(fs::is_directory(root), o.out_dir, ": exists and is not a directory");
    OAR_CHECK(o.force || fs::is_empty(root), o.out_dir,
              ": not empty; refusing to write into it (use --force to overwrite)");
  }
  SynthSummary summary;
  summary.codec = resolve_codec(o.encode);
  for (const auto& p : plans) {
    fs::create_directories((root / p.path).parent_path(), ec);
    OAR_CHECK(!ec, (root / p.path).parent_path().string(), ": cannot create (", ec.message(), ")");
  }
  fs::create_directories(root, ec);
  OAR_CHECK(!ec, o.out_dir, ": cannot create (", ec.message(), ")");
  const int64_t total = static_cast<int64_t>(plans.size());
  for (int64_t k = 0; k < total; ++k) {
    const ClipPlan& p = plans[static_cast<size_t>(k)];
    const std::vector<uint8_t> rgb = render_clip(p.params, o.frames, o.width, o.height);
    encode_video((root / p.path).string(), rgb.data(), o.frames, o.width, o.height, o.encode);
    if (progress) progress(k + 1, total);
  }
  summary.clips = total;

  // Lists: `relative/path label`, one file per split and label kind.
  for (const char* split : kSplits) {
    for (const auto& kind : o.labels) {
      std::ostringstream os;
      bool any = false;
      for (const auto& p : plans) {
        if (p.split != split) continue;
        os << p.path << ' ' << label_of(p.labels, kind) << '\n';
        any = true;
      }
      if (!any) continue;
      const std::string name = std::string(split) + "_" + kind + ".list";
      io::write_file_atomic(root / name, os.str());
      summary.list_files.push_back(name);
    }
  }
  Json classes = Json::object();
  for (const std::string kind : {"appearance", "order", "combined"}) {
    Json names = Json::array();
    std::string txt;
    for (const auto& n : class_names(o, kind)) {
      names.push_back(n);
      txt += n + "\n";
    }
    classes[kind] = names;
    io::write_file_atomic(root / ("classes_" + kind + ".txt"), txt);
  }
  io::write_file_atomic(root / "classes.json", classes.dump(1) + "\n");
  // Ground truth of every clip, for analysis: what each label means and how the shape moved.
  std::ostringstream tsv;
  tsv << "path\tsplit\tappearance\torder\tcombined\tshape\tmotion\tdirection\tx0\tx1\tr0\tr1\ta0\ta"
         "1\n";
  for (const auto& p : plans) {
    char geo[160];
    std::snprintf(geo, sizeof(geo), "%.3f\t%.3f\t%.3f\t%.3f\t%.4f\t%.4f", p.params.cx0,
                  p.params.cx1, p.params.r0, p.params.r1, p.params.a0, p.params.a1);
    tsv << p.path << '\t' << p.split << '\t' << p.labels.appearance << '\t' << p.labels.order
        << '\t' << p.labels.combined << '\t' << shape_names()[static_cast<size_t>(p.params.shape)]
        << '\t' << motion_name(p.params.motion) << '\t'
        << direction_name(p.params.motion, p.params.direction) << '\t' << geo << '\n';
  }
  io::write_file_atomic(root / "clips.tsv", tsv.str());
  return summary;
}

}  // namespace oar::video::synth
