#!/usr/bin/env bash
# The GPU checks of the capturable updates (eager / torch.compile / CUDA graph), one prepared run:
#
#   bash scripts/gpu_compile_checks.sh OUT_DIR        # at most ~8 min on one H100/H200
#
# Stops at the first failing stage (each has its own time limit) and writes JSON under OUT_DIR:
# 1. the CUDA tests of the compiled steps and envs (`pytest -m cuda`);
# 2. updates/s of the default pixel learner, eager / compiled / graph-captured, at batch 64 and 256
#    (bench_update_b64.json, bench_update_b256.json; `jepa-agents bench update`);
# 3. discrete SAC on 84x84 Atari frames (bench_update_atari.json; skipped, and said so, without ale-py);
# 4. the zero-shot learners at batch 1,024 (bench_zero_shot.json);
# 5. one DMC-100k run of torch/cartpole_swingup on the GPU (env, replay and learner on the device,
#    compile=cudagraph) with its wall time and final return (dmc100k_run.json); cut at DMC_S seconds.
# A machine without CUDA stops at the first line with the reason.
set -euo pipefail
out=$(realpath -m "${1:?usage: bash scripts/gpu_compile_checks.sh OUT_DIR}")
work=${WORK:-/tmp/gpu_compile_checks}
py=${PYTHON:-python3}
dmc_s=${DMC_S:-200}
export MUJOCO_GL=${MUJOCO_GL:-disable} PYTHONUNBUFFERED=1
cd "$(dirname "$0")/.."
mkdir -p "$out" "$work"
log() { echo "[$(date +%T) +${SECONDS}s] $*" | tee -a "$out/log.txt"; }
last_json() { grep -E '^\{' "$1" | tail -1; }  # the benchmarks end with one JSON line
bench() {  # bench NAME LIMIT ARGS...: run a benchmark, keep its output and its JSON line
  local name=$1 limit=$2
  shift 2
  log "$name: $*"
  timeout --kill-after=10 "$limit" "$@" >"$work/$name.txt" 2>&1 || { tail -20 "$work/$name.txt"; log "$name failed"; exit 1; }
  last_json "$work/$name.txt" >"$out/$name.json"
  grep -E 'updates/s' "$work/$name.txt" | tee -a "$out/log.txt"
}

"$py" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: these checks need a GPU')"
"$py" -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))" | tee -a "$out/log.txt"

log "1. CUDA tests"
timeout 120 "$py" -m pytest -q -m cuda tests/test_compile.py tests/test_torch_envs.py 2>&1 | tail -5 | tee -a "$out/log.txt"
test "${PIPESTATUS[0]}" -eq 0 || { log "CUDA tests failed"; exit 1; }

common=(--threads 4 --variants auto --modes none compile cudagraph --updates 50 --repeats 2 --warmup 10)
log "2. pixel learner"
bench bench_update_b64 150 "$py" -m jepa_agents.cli bench update -- "${common[@]}" device=cuda
bench bench_update_b256 120 "$py" -m jepa_agents.cli bench update -- "${common[@]}" device=cuda agent.batch_size=256

log "3. discrete SAC, 84x84 Atari"
if "$py" -c "import ale_py" 2>/dev/null; then
  bench bench_update_atari 120 "$py" -m jepa_agents.cli bench update -- "${common[@]}" device=cuda \
    agent=discrete_sac env=atari/pong train=atari100k
else
  log "skipped: ale-py is not installed here"
fi

log "4. zero-shot learners"
bench bench_zero_shot 120 "$py" scripts/bench_zero_shot.py --device cuda --batch 1024 \
  --modes none compile cudagraph --updates 200 --repeats 2

log "5. DMC-100k cart-pole on the GPU (cut at ${dmc_s}s)"
start=$SECONDS
set +e
timeout --kill-after=10 "$dmc_s" "$py" -m jepa_agents.cli train train=dmc_100k device=cuda compile=cudagraph \
  logging.progress_bar=false "run_dir=$work/dmc100k" >"$work/dmc100k.txt" 2>&1
rc=$?
set -e
"$py" - "$work/dmc100k" "$rc" "$((SECONDS - start))" >"$out/dmc100k_run.json" <<'EOF'
import csv, json, sys
from pathlib import Path
run, rc, wall = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
path = run / "scalars.csv"
rows = [r for r in csv.DictReader(open(path)) if r["tag"] == "eval/return"] if path.exists() else []
evals = [(int(r["step"]), float(r["value"])) for r in rows]
print(json.dumps({"exit": rc, "complete": rc == 0, "wall_s": wall, "eval_return_by_env_step": evals}))
EOF
cat "$out/dmc100k_run.json" | tee -a "$out/log.txt"
tail -3 "$work/dmc100k.txt" | tee -a "$out/log.txt"
log "done"
