"""Peers of bench/video_decode.cpp: the same files, threads, TSN indices (centred, test-time) and
SIZE x SIZE RGB output, with PyAV or decord from PyPI. One JSON line per run:
  python3 bench/video_decode.py pyav|decord THREADS SEGMENTS SIZE REPEATS FILE...
THREADS is the codec's thread count (PyAV's stream.thread_count, decord's num_threads).
PyAV decodes as MMAction2's PyAVDecode with accurate seeking: seek to the keyframe before each
wanted frame and decode forward to it, here made as strong as oar's decoder: the packets are
indexed first (as oar does when opening a file) so that a wanted frame reachable by decoding on
from the current position never costs a seek. Frames are scaled by swscale's bilinear filter
(frame.reformat), as oar's decoder does. decord: VideoReader(width, height).get_batch(indices).
OAR_BENCH_INDICES=PATH writes "file idx idx ..." per file, as the C++ bench does."""
import json
import os
import sys
import time


def sample_tsn(num_frames, seg_num):
    """readers::sample_tsn with seglen 1 and train False (PaddleVideo's KineticsReader)."""
    average_dur = num_frames // seg_num
    out = []
    for i in range(seg_num):
        if average_dur >= 1:
            idx = (average_dur - 1) // 2 + i * average_dur
        else:
            idx = i
        out.append(idx % num_frames)
    return out


def clip_pyav(path, threads, segments, size):
    import av
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_count = threads
        stream.thread_type = "AUTO"  # frame and slice threads, as oar asks FFmpeg for
        # Packet index in presentation order: timestamps and the latest keyframe at each frame.
        packets = [(p.pts if p.pts is not None else p.dts, p.is_keyframe)
                   for p in container.demux(stream) if p.size > 0]
        packets.sort(key=lambda p: p[0])
        pts = [p[0] for p in packets]
        key_before, key = [], 0
        for i, (_, k) in enumerate(packets):
            if k:
                key = i
            key_before.append(key)
        indices = sample_tsn(len(pts), segments)
        frames = {}
        pos = None  # index of the last frame decoded
        decoder = None
        for idx in sorted(set(indices)):
            if pos is None or idx <= pos or key_before[idx] > pos:
                container.seek(pts[key_before[idx]], backward=True, any_frame=False, stream=stream)
                decoder = container.decode(stream)
            for frame in decoder:
                pos = pts.index(frame.pts) if frame.pts is not None else (pos or 0) + 1
                if frame.pts is not None and frame.pts >= pts[idx]:
                    frames[idx] = frame.reformat(width=size, height=size, format="rgb24",
                                                 interpolation="BILINEAR").to_ndarray()
                    break
            else:
                raise RuntimeError(f"{path}: frame {idx} not decoded")
        out = [frames[i] for i in indices]
        assert out[-1].shape == (size, size, 3)
        return indices, out


def clip_decord(path, threads, segments, size):
    import decord
    vr = decord.VideoReader(path, ctx=decord.cpu(0), width=size, height=size, num_threads=threads)
    indices = sample_tsn(len(vr), segments)
    out = vr.get_batch(indices).asnumpy()
    assert out.shape == (len(indices), size, size, 3)
    return indices, out


def main():
    impl, threads, segments, size, repeats = sys.argv[1], *map(int, sys.argv[2:6])
    files = sys.argv[6:]
    clip = {"pyav": clip_pyav, "decord": clip_decord}[impl]
    if impl == "pyav":
        import av
        version = "PyAV " + av.__version__
    else:
        import decord
        version = "decord " + decord.__version__
    # One untimed pass (page cache, library set-up) that records the indices.
    lines = []
    for f in files:
        indices, _ = clip(f, threads, segments, size)
        lines.append(f + "".join(f" {i}" for i in indices))
    if os.environ.get("OAR_BENCH_INDICES"):
        with open(os.environ["OAR_BENCH_INDICES"], "w") as fh:
            fh.write("\n".join(lines) + "\n")
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        for f in files:
            clip(f, threads, segments, size)
    s, cpu = time.perf_counter() - t0, time.process_time() - c0
    n = repeats * len(files)
    # CPU time (all of the process's threads) per clip: steadier than clips/s on a shared machine.
    print(json.dumps({"impl": version, "threads": threads, "segments": segments, "size": size,
                      "clips": n, "seconds": round(s, 3), "clips_per_s": round(n / s, 2),
                      "cpu_ms_per_clip": round(1000 * cpu / n, 2)}))


if __name__ == "__main__":
    main()
