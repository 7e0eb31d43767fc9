"""PyTorch's Gloo allreduce, timed like bench/allreduce.cpp (2 processes on loopback).
   bench/.venv/bin/python bench/allreduce_torch.py [--max_mb 256]"""
import argparse, os, socket, statistics, time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def worker(rank, world, port, max_bytes):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    if rank == 0:
        print(f"{'bytes':>12} {'median_us':>12} {'algbw_GB/s':>14} {'busbw_GB/s':>14}", flush=True)
    b = 1024
    while b <= max_bytes:
        t = torch.ones(b // 4)
        reps = 100 if b <= 1 << 20 else 8 if b <= 16 << 20 else 2
        dist.all_reduce(t)
        rounds = []
        for _ in range(5):
            dist.barrier()
            dist.all_reduce(t)
            t0 = time.perf_counter()
            for _ in range(reps):
                dist.all_reduce(t)
            rounds.append((time.perf_counter() - t0) / reps * 1e6)
        med = statistics.median(rounds)
        alg = b / (med * 1e3)
        if rank == 0:
            print(f"{b:>12} {med:>12.1f} {alg:>14.3f} {alg * 2 * (world - 1) / world:>14.3f}", flush=True)
        b *= 4
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--world", type=int, default=2)
    ap.add_argument("--max_mb", type=int, default=256)
    a = ap.parse_args()
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    mp.spawn(worker, args=(a.world, port, a.max_mb << 20), nprocs=a.world)
