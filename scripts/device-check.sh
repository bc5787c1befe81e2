#!/usr/bin/env bash
# The GPU checks and benchmarks of shakeshake on a fresh Linux machine with a GPU: at most 9
# minutes after the build (each step has its own time limit), every output in one folder
# (first argument, default device-check-out/). Without a GPU adapter it stops after listing
# the adapters.
#
#   scripts/device-check.sh [OUT]
#
# It builds with cargo when cargo is there, else runs target/release/shakeshake built
# elsewhere (carry it). If the Vulkan loader is missing and .gl/*.deb exist (see the device
# notes), it unpacks them. Then: the adapters, `selftest --json` on the chosen one, `bench ops
# --json --all-variants` for 26 2x32d, `bench train --json` for 26 2x32d and 26 2x96d, and
# where PyTorch is installed its step of 26 2x32d (scripts/pytorch_step.py) beside them.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-device-check-out}
mkdir -p "$out"
started=$(date +%s)
log() { echo "[$(( $(date +%s) - started ))s] $*" | tee -a "$out/summary.txt"; }

# (grep -c reads all of ldconfig's output: grep -q could stop it early, failing the pipe.)
if [ "$(ldconfig -p | grep -c libvulkan)" = 0 ] && compgen -G ".gl/*.deb" >/dev/null; then
    for f in .gl/*.deb; do dpkg -x "$f" / || { log "could not unpack $f"; exit 1; }; done
    ldconfig
    log "unpacked the Vulkan loader from .gl/"
fi
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
    export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi

bin=target/release/shakeshake
if command -v cargo >/dev/null; then
    log "building"
    cargo build --release >"$out/build.txt" 2>&1 || { log "build failed (see build.txt)"; exit 1; }
fi
[ -x "$bin" ] || { log "no $bin: build it (cargo build --release) and carry it"; exit 1; }
export SHAKESHAKE_CACHE_DIR="$out/cache" RUST_BACKTRACE=0

# step NAME SECONDS ARGS...: one command, its stdout to NAME.json or .txt, stderr to NAME.err.
step() {
    local name=$1 seconds=$2
    shift 2
    timeout "$seconds" "$bin" "$@" >"$out/$name" 2>"$out/$name.err"
    local rc=$?
    log "$name: exit $rc ($*)"
    tail -n 3 "$out/$name.err" | sed 's/^/    /' | tee -a "$out/summary.txt"
}

step adapters.txt 30 adapters
# No GPU adapter (a missing driver or Vulkan loader): stop now, not after the lease is spent.
if ! grep -qE "IntegratedGpu|DiscreteGpu|VirtualGpu" "$out/adapters.txt"; then
    log "no GPU adapter ($(grep -cE '^[0-9]+:' "$out/adapters.txt") adapters, none a GPU; see adapters.txt): stopping."
    exit 1
fi
step selftest.json 90 selftest --json
step bench-ops.json 150 bench ops --json --all-variants --width 32
step train-26-2x32d.json 60 bench train --json --depth 26 --width 32 --steps 10
step train-26-2x96d.json 90 bench train --json --depth 26 --width 96 --steps 5
# PyTorch's step of the same network (FP32, TF32 off, batch 128), where the machine has it:
# the ratio to PyTorch on the same GPU in the same call.
if python3 -c "import torch" 2>/dev/null; then
    timeout 120 python3 scripts/pytorch_step.py --depth 26 --width 32 \
        >"$out/pytorch-26-2x32d.json" 2>"$out/pytorch-26-2x32d.err"
    log "pytorch-26-2x32d.json: exit $?"
else
    log "no PyTorch here: no ratio to it"
fi
log "done; 3x3 convolutions (GFLOP/s by variant):"
grep '"op":"conv2d"' "$out/bench-ops.json" | grep -o '"pass":"[a-z_]*","shape":"3x3[^"]*","variant":"[a-z0-9_]*","ms":[0-9.e-]*,"gflops":[0-9.e-]*' \
    | tee -a "$out/summary.txt"
grep -o '"images_per_second":[0-9.]*' "$out"/train-*.json "$out"/pytorch-*.json 2>/dev/null | tee -a "$out/summary.txt"
