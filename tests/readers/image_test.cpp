// Image decoding (formats, gray, alpha, EXIF orientation, corrupt files) and the image_folder /
// image_list readers, on images written at test time.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>

#include "engine/config/error.h"
#include "readers/image/image_dataset.h"
#include "readers/registry.h"

namespace fs = std::filesystem;
using namespace oar;
using namespace oar::readers;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() /
           ("oar_image_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  static int& counter() {
    static int c = 0;
    return c;
  }
};

// h x w BGR image: left half pure red, right half pure blue (in RGB terms).
cv::Mat red_blue(int h, int w) {
  cv::Mat m(h, w, CV_8UC3, cv::Scalar(255, 0, 0));           // BGR blue
  m(cv::Rect(0, 0, w / 2, h)).setTo(cv::Scalar(0, 0, 255));  // BGR red
  return m;
}

void write(const fs::path& p, const cv::Mat& m) {
  fs::create_directories(p.parent_path());
  ASSERT_TRUE(cv::imwrite(p.string(), m)) << p;
}

void write_text(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << s;
}

// A JPEG with an EXIF APP1 segment whose Orientation tag is `orientation`, inserted after APP0.
void write_exif_jpeg(const fs::path& p, const cv::Mat& m, int orientation) {
  std::vector<uchar> jpg;
  ASSERT_TRUE(cv::imencode(".jpg", m, jpg, {cv::IMWRITE_JPEG_QUALITY, 100}));
  ASSERT_EQ(jpg[2], 0xFF);
  ASSERT_EQ(jpg[3], 0xE0);  // JFIF APP0 follows SOI
  const size_t app0_end = 4 + (size_t(jpg[4]) << 8 | jpg[5]);
  const std::vector<uchar> app1 = {0xFF, 0xE1,
                                   0x00, 34,  // APP1, length 34
                                   'E',  'x',
                                   'i',  'f',
                                   0,    0,  // Exif header
                                   'M',  'M',
                                   0x00, 0x2A,
                                   0x00, 0x00,
                                   0x00, 0x08,  // big-endian TIFF, IFD at 8
                                   0x00, 0x01,  // one entry
                                   0x01, 0x12,
                                   0x00, 0x03,
                                   0x00, 0x00,
                                   0x00, 0x01,  // Orientation, SHORT, 1 value
                                   0x00, static_cast<uchar>(orientation),
                                   0x00, 0x00,  // the value
                                   0x00, 0x00,
                                   0x00, 0x00};  // no next IFD
  jpg.insert(jpg.begin() + static_cast<long>(app0_end), app1.begin(), app1.end());
  std::ofstream(p, std::ios::binary)
      .write(reinterpret_cast<const char*>(jpg.data()), static_cast<std::streamsize>(jpg.size()));
}

bool is_red(const Image& img, int64_t y, int64_t x) {
  const float* p = img.pixel(y, x);
  return p[0] > 0.8f && p[1] < 0.2f && p[2] < 0.2f;
}
bool is_blue(const Image& img, int64_t y, int64_t x) {
  const float* p = img.pixel(y, x);
  return p[0] < 0.2f && p[1] < 0.2f && p[2] > 0.8f;
}

}  // namespace

TEST(ImageDecode, EveryFormatDecodesToRgbOnTheUnitScale) {
  TempDir d;
  for (const char* ext : {"png", "bmp", "jpg", "webp"}) {
    const fs::path p = d.path / (std::string("a.") + ext);
    write(p, red_blue(12, 20));
    Image img = decode_image(p.string(), 3);
    EXPECT_EQ(img.height, 12) << ext;
    EXPECT_EQ(img.width, 20) << ext;
    EXPECT_EQ(img.channels, 3) << ext;
    EXPECT_TRUE(is_red(img, 6, 2)) << ext;  // RGB order, not OpenCV's BGR
    EXPECT_TRUE(is_blue(img, 6, 17)) << ext;
  }
  const Image png = decode_image((d.path / "a.png").string(), 3);
  EXPECT_FLOAT_EQ(png.pixel(0, 0)[0], 1.0f);  // lossless: exactly 255 / 255
  EXPECT_FLOAT_EQ(png.pixel(0, 0)[2], 0.0f);
}

TEST(ImageDecode, GrayAndAlpha) {
  TempDir d;
  cv::Mat gray(5, 7, CV_8U, cv::Scalar(51));
  write(d.path / "g.png", gray);
  Image g1 = decode_image((d.path / "g.png").string(), 1);
  EXPECT_EQ(g1.channels, 1);
  EXPECT_NEAR(g1.data[0], 0.2f, 1e-6);
  Image g3 = decode_image((d.path / "g.png").string(), 3);  // gray file, colour request
  EXPECT_EQ(g3.channels, 3);
  EXPECT_NEAR(g3.pixel(4, 6)[1], 0.2f, 1e-6);
  cv::Mat bgra(4, 4, CV_8UC4, cv::Scalar(0, 255, 0, 0));  // green, fully transparent
  write(d.path / "rgba.png", bgra);
  Image a = decode_image((d.path / "rgba.png").string(), 3);
  EXPECT_EQ(a.channels, 3);  // alpha dropped, stored colour kept
  EXPECT_FLOAT_EQ(a.pixel(1, 1)[1], 1.0f);
  Image a1 = decode_image((d.path / "rgba.png").string(), 1);
  EXPECT_EQ(a1.channels, 1);
}

TEST(ImageDecode, ExifOrientationIsApplied) {
  TempDir d;
  // Stored 8 x 16 (red left, blue right); orientation 6 means "rotate 90 degrees clockwise to
  // display": the displayed image is 16 x 8 with red on top.
  write_exif_jpeg(d.path / "rot.jpg", red_blue(8, 16), 6);
  Image img = decode_image((d.path / "rot.jpg").string(), 3);
  EXPECT_EQ(img.height, 16);
  EXPECT_EQ(img.width, 8);
  EXPECT_TRUE(is_red(img, 2, 4));
  EXPECT_TRUE(is_blue(img, 13, 4));
  Image gray = decode_image((d.path / "rot.jpg").string(), 1);
  EXPECT_EQ(gray.height, 16);
  write_exif_jpeg(d.path / "up.jpg", red_blue(8, 16), 1);  // orientation 1: as stored
  EXPECT_EQ(decode_image((d.path / "up.jpg").string(), 3).height, 8);
}

TEST(ImageDecode, CorruptAndMissingFilesNameThePath) {
  TempDir d;
  write_text(d.path / "bad.jpg", "this is not a JPEG");
  write_text(d.path / "empty.png", "");
  for (const char* f : {"bad.jpg", "empty.png", "missing.png"}) {
    const std::string p = (d.path / f).string();
    try {
      decode_image(p, 3);
      FAIL() << "no error for " << f;
    } catch (const std::exception& e) {
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
    }
  }
}

TEST(ImageFolder, ClassesAreSortedSubfoldersAndFilesSorted) {
  TempDir d;
  write(d.path / "dog" / "b.png", red_blue(4, 4));
  write(d.path / "dog" / "a.jpg", red_blue(4, 4));
  write(d.path / "cat" / "x.bmp", red_blue(4, 4));
  write(d.path / "cat" / "sub" / "y.webp", red_blue(4, 4));
  write_text(d.path / "cat" / "notes.txt", "ignored");
  fs::create_directories(d.path / "empty");  // no images: not a class
  ImageSource s = scan_image_folder(d.path.string());
  ASSERT_EQ(s.class_names, (std::vector<std::string>{"cat", "dog"}));
  ASSERT_EQ(s.entries.size(), 4u);
  EXPECT_EQ(fs::path(s.entries[0].path).filename(), "y.webp");  // cat/sub/y.webp < cat/x.bmp
  EXPECT_EQ(s.entries[0].label, 0);
  EXPECT_EQ(fs::path(s.entries[2].path).filename(), "a.jpg");
  EXPECT_EQ(s.entries[3].label, 1);
  EXPECT_THROW(scan_image_folder((d.path / "empty").string()), std::exception);
}

TEST(ImageList, LabelsRootsCommentsAndErrors) {
  TempDir d;
  write(d.path / "img" / "a.png", red_blue(4, 4));
  write(d.path / "img" / "b c.png", red_blue(4, 4));
  write_text(d.path / "train.txt", "# comment\nimg/a.png 3\n\nimg/b c.png 0\n");
  ImageSource s = read_image_list((d.path / "train.txt").string(), "");
  ASSERT_EQ(s.entries.size(), 2u);
  EXPECT_EQ(s.entries[0].path, (d.path / "img" / "a.png").string());
  EXPECT_EQ(s.entries[0].label, 3);
  EXPECT_EQ(s.entries[1].path, (d.path / "img" / "b c.png").string());
  write_text(d.path / "l2.txt", "a.png 1\n");
  EXPECT_EQ(
      read_image_list((d.path / "l2.txt").string(), (d.path / "img").string()).entries[0].path,
      (d.path / "img" / "a.png").string());
  write_text(d.path / "mixed.txt", "img/a.png 1\nimg/b c.png\n");
  try {
    read_image_list((d.path / "mixed.txt").string(), "");
    FAIL();
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("mixed.txt:2"), std::string::npos) << e.what();
  }
  write_text(d.path / "paths.txt", "img/a.png\n");
  EXPECT_EQ(read_image_list((d.path / "paths.txt").string(), "").entries[0].label, -1);
}

TEST(ImageInput, FileFolderOrList) {
  TempDir d;
  write(d.path / "imgs" / "b.png", red_blue(4, 4));
  write(d.path / "imgs" / "a.png", red_blue(4, 4));
  write_text(d.path / "list.txt", "imgs/b.png\n");
  EXPECT_EQ(resolve_image_input((d.path / "imgs" / "a.png").string()).entries.size(), 1u);
  ImageSource folder = resolve_image_input((d.path / "imgs").string());
  ASSERT_EQ(folder.entries.size(), 2u);
  EXPECT_EQ(fs::path(folder.entries[0].path).filename(), "a.png");
  EXPECT_EQ(folder.entries[0].label, -1);
  EXPECT_EQ(resolve_image_input((d.path / "list.txt").string()).entries[0].path,
            (d.path / "imgs" / "b.png").string());
  ImageSource classes = resolve_image_input(d.path.string());  // no images of its own
  EXPECT_EQ(classes.class_names, std::vector<std::string>{"imgs"});
}

namespace {
std::shared_ptr<DataLoader> loader(const std::string& yaml, const std::string& mode = "train") {
  register_components();
  Config c = Config::from_string("data:\n  " + mode + ": {}\n" + yaml.substr(6));
  return make_loader(c, mode, 7);
}
}  // namespace

TEST(ImageReaders, FolderThroughTheRegistryWithTransforms) {
  TempDir d;
  write(d.path / "a" / "1.png", red_blue(10, 20));
  write(d.path / "b" / "2.jpg", red_blue(30, 12));
  write(d.path / "b" / "3.bmp", red_blue(16, 16));
  auto l = loader("data:\n  name: image_folder\n  root: " + d.path.string() +
                  "\n  batch_size: 3\n  num_workers: 0\n  shuffle: false\n"
                  "  transforms:\n    - {name: resize, size: [8, 8]}\n    - {name: to_chw}\n");
  l->start_epoch(0);
  Batch b;
  ASSERT_TRUE(l->next(b));
  EXPECT_EQ(b["image"].shape(), (Shape{3, 3, 8, 8}));
  EXPECT_EQ(b["label"].data<int64_t>()[0], 0);
  EXPECT_EQ(b["label"].data<int64_t>()[2], 1);
  EXPECT_EQ(b.meta[1].at("path").as_string(), (d.path / "b" / "2.jpg").string());
}

TEST(ImageReaders, OnErrorSkipSubstitutesTheNextGoodSampleAndFailNamesThePath) {
  TempDir d;
  write(d.path / "a" / "1.png", red_blue(4, 4));
  write_text(d.path / "a" / "2.png", "garbage");
  write(d.path / "b" / "3.png", red_blue(4, 4));
  const std::string base = "data:\n  name: image_folder\n  root: " + d.path.string() +
                           "\n  batch_size: 3\n  num_workers: 0\n";
  auto skip = loader(base + "  on_error: skip\n");
  skip->start_epoch(0);
  Batch b;
  testing::internal::CaptureStderr();
  ASSERT_TRUE(skip->next(b));
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find((d.path / "a" / "2.png").string()), std::string::npos) << err;
  EXPECT_EQ(b.size, 3);
  EXPECT_EQ(b.meta[1].at("path").as_string(), (d.path / "b" / "3.png").string());
  EXPECT_EQ(b.meta[1].at("skipped").as_string(), (d.path / "a" / "2.png").string());
  EXPECT_EQ(b["label"].data<int64_t>()[1], 1);
  auto fail = loader(base);
  fail->start_epoch(0);
  try {
    fail->next(b);
    FAIL() << "no error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find((d.path / "a" / "2.png").string()), std::string::npos)
        << e.what();
  }
}

TEST(ImageReaders, ListReaderAndConfigErrors) {
  TempDir d;
  write(d.path / "x.png", red_blue(6, 6));
  write_text(d.path / "l.txt", "x.png 2\n");
  auto l = loader("data:\n  name: image_list\n  list: " + (d.path / "l.txt").string() +
                  "\n  num_workers: 0\n  channels: 1\n");
  l->start_epoch(0);
  Batch b;
  ASSERT_TRUE(l->next(b));
  EXPECT_EQ(b["image"].shape(), (Shape{1, 1, 6, 6}));
  EXPECT_EQ(b["label"].data<int64_t>()[0], 2);
  EXPECT_EQ(input_key("image_list"), "list");
  EXPECT_EQ(input_key("image_folder"), "root");
  const std::string base =
      "data:\n  name: image_list\n  list: " + (d.path / "l.txt").string() + "\n  num_workers: 0\n";
  EXPECT_THROW(loader(base + "  transforms: [{name: rezise, size: 3}]\n"), ConfigError);
  EXPECT_THROW(loader(base + "  transforms: [{name: resize}]\n"), ConfigError);
  EXPECT_THROW(loader(base + "  transforms: [{name: resize, size: 3, sise: 4}]\n"), ConfigError);
  EXPECT_THROW(loader(base + "  transforms: [{name: to_chw}, {name: resize, size: 3}]\n"),
               ConfigError);
  EXPECT_THROW(loader(base + "  transforms: [{name: mixup}]\n"), ConfigError);
  EXPECT_THROW(loader(base + "  transforms: {name: resize}\n"), ConfigError);
}

TEST(ImageReaders, RandomTransformsAndMixupRepeatAcrossWorkerCountsAndDifferAcrossSeeds) {
  TempDir d;
  for (int i = 0; i < 6; ++i)
    write(d.path / (i % 2 ? "odd" : "even") / (std::to_string(i) + ".png"),
          red_blue(12 + i, 16 + 2 * i));
  auto batches = [&](int workers, uint64_t seed) {
    register_components();
    Config c = Config::from_string(
        "data:\n  train: {}\n  name: image_folder\n  root: " + d.path.string() +
        "\n  batch_size: 3\n  num_workers: " + std::to_string(workers) +
        "\n  transforms: [{name: random_resized_crop, size: 6}, {name: horizontal_flip}]\n"
        "  batch_transforms: [{name: mixup, alpha: 0.4}]\n");
    auto l = make_loader(c, "train", seed);
    l->start_epoch(1);
    std::vector<float> all;
    Batch b;
    while (l->next(b)) {
      EXPECT_TRUE(b.has("label_soft"));
      EXPECT_FALSE(b.has("_mix_seed"));
      const Tensor& x = b["image"];
      all.insert(all.end(), x.data<float>(), x.data<float>() + x.numel());
      const Tensor& s = b["label_soft"];
      all.insert(all.end(), s.data<float>(), s.data<float>() + s.numel());
    }
    return all;
  };
  const std::vector<float> a = batches(0, 5);
  EXPECT_EQ(a.size(), (6u * 3 * 36 + 6u * 2));
  EXPECT_EQ(batches(2, 5), a);
  EXPECT_NE(batches(0, 6), a);
}
