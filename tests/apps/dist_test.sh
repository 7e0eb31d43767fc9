#!/usr/bin/env bash
# Distributed data parallel with real processes on 127.0.0.1 (Gloo):
#  - 2 processes with per-rank batch B/2 end with the same parameters as 1 process with batch B
#    (synchronised batch norm, no dropout), also with gradient accumulation;
#  - a worker killed mid-run: the launcher stops the group, exits non-zero and names the rank;
#    with --max_restarts 1 the group resumes from the last checkpoint and finishes;
#  - a rank that never arrives: the rendezvous times out and names it.
# Usage: dist_test.sh OAR_BINARY SOURCE_DIR
set -u
oar=$1
src=$(cd "$2" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
ok() { passed=$((passed + 1)); }
export OMP_NUM_THREADS=1

fm=/usr/share/datasets/fashion-mnist
if [ ! -f "$fm/train-images-idx3-ubyte.gz" ]; then
  echo "SKIP: dataset-fashion-mnist is not installed"
  exit 0
fi
if "$oar" version 2>&1 | grep -q "gloo: no"; then
  echo "SKIP: this oar has no Gloo"
  exit 0
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

cat > "$tmp/small.yaml" <<YAML
_base_: $src/configs/vision/quickstart.yaml
model: {width: 4, dropout: 0.0}
data:
  num_workers: 0
  train: {limit: 256, shuffle: true}
  valid: {limit: 64}
trainer:
  max_steps: 4
  log_every: 1
  eval_every_epochs: 0
  distributed: {sync_batch_norm: true, timeout_s: 20}
YAML

# --- 1 process, batch 32 vs 2 processes, batch 16 each
"$oar" train -c "$tmp/small.yaml" -o data.batch_size=32 --output "$tmp/one" --plain \
  > "$tmp/one.log" 2>&1 || fail "1-process run: $(tail -3 "$tmp/one.log")"
"$oar" launch --nproc_per_node 2 -- oar train -c "$tmp/small.yaml" -o data.batch_size=16 \
  --output "$tmp/two" --plain > "$tmp/two.log" 2>&1 || fail "2-process run: $(tail -5 "$tmp/two.log")"
grep -q "rank 1 of 2" "$tmp/two.log" && ok || fail "the 2-process run did not report rank 1 of 2"
[ "$(ls "$tmp/two/ckpt")" = "step-4" ] && ok || fail "2-process checkpoints: $(ls "$tmp/two/ckpt")"
"$oar" tools compare-weights "$tmp/one/ckpt/step-4" "$tmp/two/ckpt/step-4" --rtol 1e-5 \
  > "$tmp/cmp.out" 2>&1 && ok || fail "1 vs 2 processes: $(tail -3 "$tmp/cmp.out")"
echo "1 vs 2 processes: $(tail -1 "$tmp/cmp.out")"
# a different run really differs (the comparison can fail)
"$oar" train -c "$tmp/small.yaml" -o data.batch_size=32 -o trainer.max_steps=3 --output "$tmp/three" \
  --plain > /dev/null 2>&1
"$oar" tools compare-weights "$tmp/one/ckpt/step-4" "$tmp/three/ckpt/step-3" --rtol 1e-5 \
  > /dev/null 2>&1 && fail "compare-weights did not see a difference" || ok

# --- the same with gradient accumulation: 1 x (16 x 2) vs 2 x (8 x 2)
"$oar" train -c "$tmp/small.yaml" -o data.batch_size=16 -o trainer.grad_accum=2 \
  --output "$tmp/one_acc" --plain > "$tmp/one_acc.log" 2>&1 || fail "1-process accum: $(tail -3 "$tmp/one_acc.log")"
"$oar" launch --nproc_per_node 2 -- oar train -c "$tmp/small.yaml" -o data.batch_size=8 \
  -o trainer.grad_accum=2 --output "$tmp/two_acc" --plain > "$tmp/two_acc.log" 2>&1 \
  || fail "2-process accum: $(tail -5 "$tmp/two_acc.log")"
"$oar" tools compare-weights "$tmp/one_acc/ckpt/step-4" "$tmp/two_acc/ckpt/step-4" --rtol 1e-5 \
  > "$tmp/cmp_acc.out" 2>&1 && ok || fail "accumulation, 1 vs 2 processes: $(tail -3 "$tmp/cmp_acc.out")"
echo "grad accumulation, 1 vs 2 processes: $(tail -1 "$tmp/cmp_acc.out")"

# --- a worker killed mid-run
# start_long NAME EXTRA_LAUNCH_ARGS [STEPS]: a long 2-process run in the background; pid in $lp
start_long() {
  "$oar" launch --nproc_per_node 2 --grace_s 5 $2 -- oar train -c "$tmp/small.yaml" \
    -o data.batch_size=16 -o trainer.max_steps=${3:-100000} -o trainer.save_every_steps=2 \
    -o trainer.keep_last=1 --output "$tmp/$1" --plain > "$tmp/$1.log" 2>&1 &
  lp=$!
}
# wait_for FILE_GLOB SECONDS
wait_for() {
  for _ in $(seq 1 $(($2 * 10))); do
    compgen -G "$1" > /dev/null && return 0
    sleep 0.1
  done
  return 1
}
pid_of_rank() { sed -n "s/^launch: rank $2 (local $2) pid \([0-9]*\)$/\1/p" "$tmp/$1.log" | tail -1; }

start_long killed ""
wait_for "$tmp/killed/ckpt/step-*" 30 || fail "the long run wrote no checkpoint: $(tail -3 "$tmp/killed.log")"
victim=$(pid_of_rank killed 1)
t0=$(date +%s)
kill -9 "$victim"
for _ in $(seq 1 300); do kill -0 "$lp" 2> /dev/null || break; sleep 0.1; done
if kill -0 "$lp" 2> /dev/null; then
  fail "the launcher is still running 30 s after rank 1 died"
  kill -9 "$lp"
else
  wait "$lp"
  rc=$?
  [ "$rc" -ne 0 ] && ok || fail "launcher exit $rc after a worker was killed"
  grep -Eq "error: launch: rank 1 \(pid $victim\) was killed by signal 9" "$tmp/killed.log" && ok \
    || fail "the launcher did not name the killed rank: $(grep error "$tmp/killed.log" | tail -3)"
  echo "killed worker: launcher exited $rc after $(($(date +%s) - t0)) s: $(grep 'error: launch' "$tmp/killed.log")"
fi

# --- the same with one restart: resumes from the last checkpoint and finishes
start_long restarted "--max_restarts 1" 60
wait_for "$tmp/restarted/ckpt/step-*" 30 || fail "the restart run wrote no checkpoint"
victim=$(pid_of_rank restarted 1)
kill -9 "$victim"
wait "$lp"
rc=$?
[ "$rc" -eq 0 ] && ok || fail "restarted run exit $rc: $(tail -5 "$tmp/restarted.log")"
grep -q "restarting the group (1 of 1)" "$tmp/restarted.log" && ok || fail "no restart announced"
grep -q "resuming from .*step-" "$tmp/restarted.log" && ok || fail "the restarted group did not resume"
[ -f "$tmp/restarted/ckpt/step-60/model.safetensors" ] && ok || fail "the restarted run did not finish: $(ls "$tmp/restarted/ckpt")"

# --- a rank that never arrives
port=$(free_port)
t0=$(date +%s)
WORLD_SIZE=2 RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port "$oar" train -c "$tmp/small.yaml" \
  -o trainer.distributed.timeout_s=2 --output "$tmp/alone" --plain > "$tmp/alone.log" 2>&1
rc=$?
[ "$rc" -ne 0 ] && ok || fail "a rendezvous without rank 1 succeeded"
grep -q "rank 1 of 2 never arrived" "$tmp/alone.log" && ok || fail "no clear rendezvous error: $(tail -2 "$tmp/alone.log")"
[ $(($(date +%s) - t0)) -lt 20 ] && ok || fail "the rendezvous timeout took $(($(date +%s) - t0)) s"
echo "never-arriving rank: $(grep error "$tmp/alone.log" | head -1)"

echo "dist_test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
