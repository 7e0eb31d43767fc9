// Which frames the feature path reads: stride, fps (first frame at or after each 1/fps step),
// the max_frames cap spread evenly, and bad selections rejected.
#include <gtest/gtest.h>

#include "engine/core/error.h"
#include "video/extract/extract.h"
#include "video/extract/frame_features.h"

using namespace oar;
using namespace oar::video;

namespace {

using V = std::vector<int64_t>;

TEST(SelectFrames, StrideFpsAndCap) {
  EXPECT_EQ(select_frames(5, 25, {0, 1, 0}), (V{0, 1, 2, 3, 4}));
  EXPECT_EQ(select_frames(10, 25, {0, 3, 0}), (V{0, 3, 6, 9}));
  // 30 fps read at 4 fps: frames at 0, 7.5 -> 8, 15, 22.5 -> 23.
  EXPECT_EQ(select_frames(30, 30, {4, 1, 0}), (V{0, 8, 15, 23}));
  // fps at or above the video's: every frame.
  EXPECT_EQ(select_frames(4, 8, {8, 1, 0}), (V{0, 1, 2, 3}));
  // 10 frames capped to 4: the middles of 4 equal bins.
  EXPECT_EQ(select_frames(10, 25, {0, 1, 4}), (V{1, 3, 6, 8}));
  EXPECT_EQ(select_frames(3, 25, {0, 1, 300}), (V{0, 1, 2}));
  EXPECT_TRUE(select_frames(0, 25, {0, 1, 300}).empty());
  EXPECT_THROW(select_frames(10, 25, {0, 0, 0}), Error);
  EXPECT_THROW(select_frames(10, 25, {-1, 1, 0}), Error);
}

TEST(FeatureFileName, KeepsRelativePathsUnderTheBase) {
  EXPECT_EQ(feature_file_name("/d/clips/train/a.mp4", "/d/clips"), "train/a.safetensors");
  EXPECT_EQ(feature_file_name("/elsewhere/b.mkv", "/d/clips"), "b.safetensors");
  EXPECT_EQ(feature_file_name("c.webm", ""), "c.safetensors");
}

}  // namespace
