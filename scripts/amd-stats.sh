#!/usr/bin/env bash
# AMD's shader compiler on every pipeline shakeshake can create, without an AMD GPU: Mesa's
# RADV null device compiles each one with ACO for a Radeon 780M (phoenix, RDNA3 laptop iGPU)
# and an RX 6800 (navi21, RDNA2; the 680M iGPU gives the same numbers), and reports its VGPRs,
# spills, LDS and waves per SIMD. The tool (Mesa 25 unpacked into ~/.cache, and a Vulkan layer
# that lets wgpu open the null device) is ../shared/tools/amd-shader-stats, or $AMD_SHADER_STATS.
#
#   scripts/amd-stats.sh [OUT]      tables in OUT (default amd-stats-out/): one CSV a family
#                                   and network, and table.md (docs/amd-stats.md is one)
#
# `shakeshake kernels --all-variants` creates every convolution variant of every pass, with
# f32 activations and with f16 (the `_f16` twins of shaders/element_f16.wgsl), at the
# layers of 26 2x32d and 26 2x96d, batch 128, and the other ops' kernels, printing each
# pipeline's label before creating it; the layer prints the compiler's statistics after, so
# each line is named by the one before. It exits non-zero when a pipeline does not compile
# or any pipeline spills VGPRs. Needs target/release/shakeshake built, gcc, python3 and, the
# first time on a machine, apt and network (the tool's setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-amd-stats-out}
tool=${AMD_SHADER_STATS:-../shared/tools/amd-shader-stats}
bin=target/release/shakeshake
[ -x "$bin" ] || { echo "no $bin: build it first (cargo build --release)" >&2; exit 1; }
[ -f "$tool/setup.sh" ] || { echo "no AMD shader statistics tool at $tool (set AMD_SHADER_STATS)" >&2; exit 1; }
mkdir -p "$out/layer"
root=$(bash "$tool/setup.sh" | tail -1)
gcc -O2 -shared -fPIC -I"$tool" -o "$out/layer/libVkLayer_shaderstats.so" "$tool/shaderstats_layer.c" -lpthread
cp "$tool/VkLayer_shaderstats.json" "$out/layer/"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

status=0
for family in phoenix navi21; do
    for width in 32 96; do
        for precision in f32 f16; do
            log="$out/$family-26x${width}-$precision.log"
            if ! LD_LIBRARY_PATH="$root/root/usr/lib/x86_64-linux-gnu" VK_ICD_FILENAMES="$root/icd/radeon_icd.json" \
                RADV_FORCE_FAMILY=$family VK_LAYER_PATH="$out/layer" VK_INSTANCE_LAYERS=VK_LAYER_SHADERSTATS \
                MESA_SHADER_CACHE_DISABLE=true SHAKESHAKE_PIPELINE_CACHE=off timeout 600 "$bin" kernels --all-variants \
                --one-at-a-time --depth 26 --width "$width" --precision "$precision" \
                --adapter "Null hardware" >"$log" 2>"$log.err"; then
                echo "$family, 26 2x${width}d, $precision: shakeshake kernels failed:" >&2
                grep -h "FAILED\|Error" "$log" "$log.err" >&2 || tail -5 "$log.err" >&2
                status=1
            fi
        done
    done
done

python3 - "$out" <<'PY' || status=1
import csv, glob, json, os, sys
out = sys.argv[1]
rows, spilled = [], []
for log in sorted(glob.glob(f"{out}/*-26x*.log")):
    family, net, precision = os.path.basename(log)[:-4].split("-")
    context, label = "-", "-"
    for line in open(log):
        if line.startswith("conv2d "):
            context = line.split(" ", 1)[1].strip()
        elif line.startswith("the rest of"):
            context = "-"
        elif line.startswith("pipeline "):
            label = line[len("pipeline "):].strip()
        elif line.startswith('{"shaderstats"'):
            j, s = json.loads(line), json.loads(line)["stats"]
            if label == "-":
                continue  # wgpu's own pipelines, made before any of ours
            wave = j["subgroup_size"]
            row = dict(family=family, network="26 2x%sd" % net[3:], precision=precision, conv=context,
                       kernel=label.split("[")[0],
                       constants=label[len(label.split("[")[0]):], wave=wave, vgprs=s["VGPRs"],
                       spilled_vgprs=s["Spilled VGPRs"], spilled_sgprs=s["Spilled SGPRs"], lds=s["LDS size"],
                       waves=s["Subgroups per SIMD"] * 32 // wave, instructions=s.get("Instructions", ""))
            rows.append(row)
            if row["spilled_vgprs"]:
                spilled.append(row)
            label = "-"
with open(f"{out}/pipelines.csv", "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
# One row a kernel (a conv variant's pass, or another op's entry point) over every shape.
groups = {}
for r in rows:
    variant = r["conv"].split(" ")[-1] if r["conv"] != "-" else "-"
    key = (r["family"], r["kernel"], variant)
    groups.setdefault(key, []).append(r)
with open(f"{out}/table.md", "w") as f:
    f.write("| family | kernel | variant | pipelines | VGPRs | waves/SIMD | LDS bytes | spilled VGPRs | spilled SGPRs |\n")
    f.write("|---|---|---|---|---|---|---|---|---|\n")
    span = lambda v: f"{min(v)}" if min(v) == max(v) else f"{min(v)}-{max(v)}"
    for (family, kernel, variant), g in sorted(groups.items()):
        f.write(f"| {family} | {kernel} | {variant} | {len(g)} | {span([r['vgprs'] for r in g])} | "
                f"{span([r['waves'] for r in g])} | {span([r['lds'] for r in g])} | "
                f"{max(r['spilled_vgprs'] for r in g)} | {max(r['spilled_sgprs'] for r in g)} |\n")
print(f"{len(rows)} pipelines: {out}/pipelines.csv, {out}/table.md")
for r in spilled:
    print(f"VGPR spill: {r['family']} {r['network']} {r['conv']} {r['kernel']}{r['constants']}: "
          f"{r['spilled_vgprs']}", file=sys.stderr)
sys.exit(1 if spilled else 0)
PY
exit $status
