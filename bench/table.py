"""Joins the JSON lines of two benchmark runs into a markdown table with ratios.

A file may hold several rounds of the same cases; each case keeps its fastest round."""
import json
import sys


def load(path):
    best = {}
    for r in map(json.loads, filter(str.strip, open(path))):
        if r["case"] not in best or r["ms"] < best[r["case"]]["ms"]:
            best[r["case"]] = r
    return best


ours, peer = load(sys.argv[1]), load(sys.argv[2])
name_a, name_b, threads = sys.argv[3], sys.argv[4], sys.argv[5]
print(f"threads: {threads}\n")
print(f"| case | {name_a} ms | {name_b} ms | speed-up ({name_b} ms / {name_a} ms) | {name_a} peak MB |")
print("|---|---:|---:|---:|---:|")
for case, r in ours.items():
    p = peer.get(case)
    pm = f"{p['ms']:.3f}" if p else "-"
    ratio = f"{p['ms'] / r['ms']:.2f}x" if p and r["ms"] > 0 else "-"
    print(f"| {case} | {r['ms']:.3f} | {pm} | {ratio} | {r.get('peak_mb', 0):.1f} |")
