#!/usr/bin/env bash
# `oar video probe` end to end on videos made with the ffmpeg CLI: the report's fields, JSON
# lines, exact counts, and bad files reported as `error: PATH: ...` while the others still print.
# Usage: probe_cli_test.sh OAR_BINARY SOURCE_DIR
set -u
oar=$1
encoders=$(ffmpeg -hide_banner -encoders 2> /dev/null)
if ! grep -q ' libx264 ' <<< "$encoders" || ! grep -q ' libvpx-vp9 ' <<< "$encoders"; then
  echo "SKIP: needs the ffmpeg CLI with the libx264 and libvpx-vp9 encoders"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
check() {  # check NAME REGEX FILE: FILE has a line matching REGEX
  if grep -Eq "$2" "$3"; then passed=$((passed + 1)); else fail "$1: no /$2/ in: $(cat "$3")"; fi
}

ffmpeg -nostdin -v error -y -f lavfi -i testsrc=size=96x64:rate=25 -frames:v 37 \
  -c:v libx264 -g 10 -pix_fmt yuv420p "$tmp/a.mp4" || { echo "FAIL: ffmpeg"; exit 1; }
ffmpeg -nostdin -v error -y -f lavfi -i testsrc=size=64x48:rate=12 -frames:v 20 \
  -c:v libvpx-vp9 -deadline realtime -cpu-used 8 "$tmp/b.webm" || { echo "FAIL: ffmpeg"; exit 1; }
ffmpeg -nostdin -v error -y -i "$tmp/a.mp4" -c copy -metadata:s:v:0 rotate=90 "$tmp/r.mp4"
echo "plain text" > "$tmp/text.mp4"
# mpeg4 with B-frames in AVI: decode-order timestamps only; the count is still exact.
ffmpeg -nostdin -v error -y -f lavfi -i testsrc=size=64x48:rate=25 -frames:v 43 \
  -c:v mpeg4 -g 12 -bf 2 -q:v 2 -vtag XVID "$tmp/bf.avi" || { echo "FAIL: ffmpeg"; exit 1; }

"$oar" video probe "$tmp/a.mp4" "$tmp/b.webm" "$tmp/r.mp4" > "$tmp/out" 2> "$tmp/err"
rc=$?
[ "$rc" -eq 0 ] || fail "probe: exit $rc: $(cat "$tmp/err")"
check container 'container +mov,mp4' "$tmp/out"
check codec 'codec +h264' "$tmp/out"
check size 'size +96x64' "$tmp/out"
check frames 'frames +37 \(decoded; header: 37\)' "$tmp/out"
check fps 'fps +25\.000' "$tmp/out"
check duration 'duration +1\.480 s' "$tmp/out"
check webm 'codec +vp9' "$tmp/out"
check webm_frames 'frames +20 \(decoded; header: none\)' "$tmp/out"
check webm_fps 'fps +12\.000' "$tmp/out"
check rotation 'rotation +270' "$tmp/out"

"$oar" video probe "$tmp/bf.avi" > "$tmp/out" 2> "$tmp/err"
rc=$?
[ "$rc" -eq 0 ] || fail "probe avi: exit $rc: $(cat "$tmp/err")"
check avi_codec 'codec +mpeg4' "$tmp/out"
check avi_frames 'frames +43 \(decoded; header: 43\)' "$tmp/out"

"$oar" video probe --json "$tmp/b.webm" > "$tmp/json" 2> "$tmp/err"
check json '^\{"path": ".*b\.webm", "container": "matroska,webm", "codec": "vp9", "width": 64, "height": 48, "frames": 20' "$tmp/json"

"$oar" video probe "$tmp/text.mp4" "$tmp/missing.mp4" "$tmp/a.mp4" > "$tmp/out" 2> "$tmp/err"
rc=$?
[ "$rc" -eq 2 ] || fail "bad files: exit $rc, expected 2"
check bad_text "^error: $tmp/text.mp4: cannot open video" "$tmp/err"
check bad_missing "^error: $tmp/missing.mp4: no such video file" "$tmp/err"
check still_probed 'frames +37' "$tmp/out"
[ "$(grep -c . "$tmp/err")" -eq 2 ] || fail "expected 2 error lines: $(cat "$tmp/err")"

"$oar" video > "$tmp/out" 2>&1
[ $? -ne 0 ] || fail "'oar video' without a command should fail"

echo "passed: $passed, failed: $failed"
[ "$failed" -eq 0 ]
