#!/usr/bin/env bash
# The GPU checks, as one prepared run on a lent GPU (the `jepa-agents` package importable, a CUDA torch):
#
#   bash scripts/gpu_checks.sh OUT_DIR          # ~9 min on one H100/H200
#
# 1. the CUDA tests (`pytest -m cuda`: torch-native envs on the GPU against the CPU);
# 2. the maze zero-shot comparison (docs/zero_shot.md) with the GPU's budget: TD-JEPA+orthonormality,
#    TD-JEPA+SIGReg and FB, seeds $ZS_SEEDS, batch 1,024, all runs at once, trained for $ZS_TRAIN_S
#    seconds (a 1M-update budget that the deadline cuts), then every run evaluated at the latest
#    checkpoint that all of them reached (rows in zero_shot_gpu.csv, written by eval-zero-shot itself,
#    and the summary zs_summary.md);
# 3. throughput: torch-native envs on the GPU (frames/s, up to 16k copies) and the pixel learner's
#    updates/s on the GPU (`jepa-agents bench update device=cuda`);
# 4. time permitting, the same runs evaluated at the CPU budget's 15k updates.
# Every stage has its own time limit and a failed stage does not stop the next; log.txt has it all.
set -u
out=$(realpath -m "${1:?usage: bash scripts/gpu_checks.sh OUT_DIR}")
work=${WORK:-/tmp/gpu_checks}
device=${DEVICE:-cuda}
zs_train_s=${ZS_TRAIN_S:-300}
zs_seeds=${ZS_SEEDS:-"0 1"}
py=${PYTHON:-python3}
eval_s=${EVAL_S:-120}
# nothing below renders with MuJoCo (the torch-native envs draw their own frames), so a machine without
# libEGL runs these checks too
export MUJOCO_GL=${MUJOCO_GL:-disable} PYTHONUNBUFFERED=1
cd "$(dirname "$0")/.."
mkdir -p "$out" "$work"
log() { echo "[$(date +%T) +${SECONDS}s] $*" | tee -a "$out/log.txt"; }
stage() { local limit=$1; shift; timeout --kill-after=10 "$limit" "$@" >>"$out/log.txt" 2>&1; log "exit $?: $*"; }

log "machine"
stage 30 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
stage 60 "$py" -c "import torch, tensordict, torchrl, mujoco, hydra; print('torch', torch.__version__, \
'cuda', torch.cuda.is_available(), 'tensordict', tensordict.__version__, 'torchrl', torchrl.__version__, \
'mujoco', mujoco.__version__)"
"$py" -c "import jepa_agents.data, envs" >>"$out/log.txt" 2>&1 || { log "the package does not import: stop"; exit 1; }

log "1. CUDA tests"
stage 90 "$py" -m pytest -q -m cuda tests/test_torch_envs.py

log "2. zero-shot on the maze: data, then all runs at once for ${zs_train_s}s"
zs=$work/zs
csv=$zs/zero_shot_gpu.csv
mkdir -p "$zs"
# the sweep collects the data itself; runs are cut at the deadline (its process group is stopped)
setsid "$py" scripts/zero_shot_sweep.py --root "$zs" --csv "$csv" --device "$device" --updates 1000000 \
  --jobs 64 --seeds $zs_seeds --set agent.batch_size=1024 train.checkpoint_every=${ZS_CKPT_EVERY:-5000} \
  train.keep_checkpoints=1000 train.sf_check_every=5000 >>"$out/log.txt" 2>&1 &
sweep=$!
sleep "$zs_train_s"
kill -TERM -- "-$sweep" 2>/dev/null
sleep 5
kill -KILL -- "-$sweep" 2>/dev/null
log "runs stopped; checkpoints:"
ls "$zs"/*/checkpoints >>"$out/log.txt" 2>&1
common=$(for d in "$zs"/*_s*/checkpoints; do ls "$d" | grep -E '^ckpt_[0-9]+\.pt$' | sort | tail -1; done \
  | sed -E 's/ckpt_0*([0-9]+)\.pt/\1/' | sort -n | head -1)
log "latest checkpoint every run reached: ${common:-none}"
evaluate() {  # evaluate every run at checkpoint step $1 (TD-JEPA runs also with z from the mean of r psi)
  local step=$1 pids=() ck
  for run in "$zs"/*_s*/; do
    ck=$(printf '%s/checkpoints/ckpt_%012d.pt' "${run%/}" "$step")
    [ -f "$ck" ] || continue
    timeout "$eval_s" "$py" -m jepa_agents.cli eval-zero-shot "$run" --checkpoint "$ck" num_threads=1 \
      "device=$device" >>"$out/log.txt" 2>&1 &
    pids+=($!)
    case "$run" in *td_jepa*)
      timeout "$eval_s" "$py" -m jepa_agents.cli eval-zero-shot "$run" --checkpoint "$ck" eval.z_inference=mean \
        num_threads=1 "device=$device" >>"$out/log.txt" 2>&1 &
      pids+=($!) ;;
    esac
  done
  for p in "${pids[@]}"; do wait "$p"; done
  log "evaluated at $step updates"
}
report() {
  stage 60 "$py" scripts/zero_shot_sweep.py --root "$zs" --csv "$csv" --report-only --summary "$out/zs_summary.md"
  cp "$csv" "$out/" 2>/dev/null
  tar czf "$out/zs_runs.tgz" -C "$zs" --exclude='*.pt' --exclude=data . 2>>"$out/log.txt"
}
[ -n "${common:-}" ] && evaluate "$common"
report

log "3. throughput"
stage 60 "$py" scripts/bench_torch_envs.py --device "$device" --num-envs 1024 4096 16384 --steps 50 \
  --dmc-steps 0 --tasks cartpole_swingup --out "$out/bench_torch_envs_gpu.md"
timeout --kill-after=10 90 "$py" scripts/bench_update.py --variants fp32 bf16 --updates 50 --repeats 2 \
  --warmup 10 --loop-steps 50 "device=$device" >"$out/bench_update_gpu.txt" 2>&1
log "exit $?: bench_update"

if [ -n "${common:-}" ] && [ "$common" -gt 15000 ] && [ "$SECONDS" -lt "${EVAL_15K_BEFORE_S:-470}" ]; then
  log "4. the same runs at the CPU budget (15k updates)"
  evaluate 15000
  report
fi
log "done"
