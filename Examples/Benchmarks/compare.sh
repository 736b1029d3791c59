#!/usr/bin/env bash
# Runs the PyTorch reference (shared/bench/torch_reference.py) and MLReward's benchmark on the same threads and prints
# a table. By default each workload is timed PAIRED (paired.py): both processes stay up and take turns, one iteration
# each, so that both see the same load on a shared machine; ratios are medians of the per-round ratios. With --unpaired
# the two run one after the other (reference, then ours, for each workload, REPEAT times). The table:
#   workload | reference it/s | ours it/s | ratio (wall) | reference CPU s/it | ours CPU s/it | ratio (CPU)
# Ratios > 1 mean MLReward is faster. Wall-clock ratios are noisy on a shared machine; the CPU-time ratio (process
# user + system time per iteration, all threads) is the more robust one. Medians over the repeats.
#
#   Examples/Benchmarks/compare.sh [--threads 2] [--seconds 10] [--only W1,W2,W2-cached,W3,W4,W4-raw,W5] [--repeat 1]
#                                  [--reference PATH] [--artifacts DIR] [--no-build] [--out FILE.jsonl]
#                                  [--baseline-bin PATH]   (unpaired only: another build of mlreward-bench, e.g. before a change)
#                                  [--unpaired] [--min-rounds 3] [--reference-env "OMP_WAIT_POLICY=PASSIVE"]
#
# mlreward-bench makes libtorch's OpenMP workers wait passively (NativeThreading.PreferPassiveWaiting; --omp-default
# turns that off). The reference runs with the environment as it is unless --reference-env gives it the same setting.
#
# W2-cached is compared with the reference's W2 (the same step without the cache); W4 (through the ML.NET
# transformer) and W4-raw (the core's batched forward) are both compared with the reference's W4.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
threads=2
seconds=10
only="W1,W2,W2-cached,W3,W4,W4-raw,W5"
repeat=1
reference="$repo/../shared/bench/torch_reference.py"
artifacts="${ARTIFACTS_PATH:-/tmp/art-bench}"
build=1
out=""
baseline=""
paired=1
min_rounds=3
reference_env=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --threads) threads="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --repeat) repeat="$2"; shift 2 ;;
    --reference) reference="$2"; shift 2 ;;
    --artifacts) artifacts="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    --out) out="$2"; shift 2 ;;
    --baseline-bin) baseline="$2"; shift 2 ;;
    --unpaired) paired=0; shift ;;
    --min-rounds) min_rounds="$2"; shift 2 ;;
    --reference-env) reference_env="$2"; shift 2 ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ -f "$reference" ]] || { echo "reference not found: $reference (use --reference PATH)" >&2; exit 2; }

# 1. The reference's packages: Debian's PyTorch and OpenBLAS under it (without OpenBLAS it runs 3-7x slower).
if ! /usr/bin/python3 -c "import torch" >/dev/null 2>&1 || ! dpkg -s libopenblas0-pthread >/dev/null 2>&1; then
  echo "installing python3-torch and libopenblas0-pthread ..." >&2
  sudo_cmd=""
  [[ "$(id -u)" -eq 0 ]] || sudo_cmd="sudo"
  $sudo_cmd apt-get install -y python3-torch libopenblas0-pthread >&2 || {
    $sudo_cmd apt-get update >&2 && $sudo_cmd apt-get install -y python3-torch libopenblas0-pthread >&2; }
fi

# 2. Our benchmark, Release.
if [[ "$build" -eq 1 ]]; then
  echo "building Examples/Benchmarks (Release) ..." >&2
  dotnet build "$repo/Examples/Benchmarks/MLReward.Benchmarks.csproj" -c Release --artifacts-path "$artifacts" -nologo -v q >&2
fi
ours="$artifacts/bin/MLReward.Benchmarks/release/mlreward-bench"
[[ -x "$ours" ]] || { echo "benchmark binary not found: $ours" >&2; exit 2; }

# 3. Both, workload by workload, on the same threads.
results="$(mktemp)"
trap 'rm -f "$results"' EXIT
reference_of() { case "$1" in W2-cached) echo W2 ;; W4-raw) echo W4 ;; *) echo "$1" ;; esac; }
IFS=',' read -r -a workloads <<< "$only"
if [[ "$paired" -eq 1 ]]; then
  for w in "${workloads[@]}"; do
    ref="$(reference_of "$w")"
    echo "paired: reference $ref vs mlreward $w ..." >&2
    /usr/bin/python3 "$here/paired.py" --seconds "$seconds" --min-iterations "$min_rounds" \
      --reference-cmd "env $reference_env /usr/bin/python3 $here/reference_cpu.py --reference $reference --threads $threads --only $ref" \
      --ours-cmd "$ours --threads $threads --only $w" >> "$results"
  done
  [[ -z "$out" ]] || cp "$results" "$out"
  /usr/bin/python3 - "$results" "$threads" "$seconds" "$reference_env" <<'EOF'
import json, sys
path, threads, seconds = sys.argv[1], sys.argv[2], sys.argv[3]
rows = [json.loads(l) for l in open(path) if l.strip().startswith("{")]
print(f"threads {threads}, >= {seconds} s of timed iterations per side, paired rounds; ratio = median over rounds of reference/ours (> 1 = MLReward faster)")
if rows:
    print(f"mlreward OpenMP wait policy: {rows[0]['mlreward'].get('omp_wait_policy', '?')}; reference environment: {sys.argv[4] or 'unchanged'}")
head = f"{'workload':<10} {'rounds':>6} {'reference it/s':>14} {'ours it/s':>10} {'ratio(wall)':>11} {'ref CPU s/it':>12} {'ours CPU s/it':>13} {'ratio(CPU)':>10} {'params ok':>9} {'ours peak MB':>12}"
print(head)
print("-" * len(head))
for r in rows:
    ref, ours = r["reference"], r["mlreward"]
    ok = [ref[k] == ours[k] for k in ("unet_params", "reward_params") if k in ref and k in ours]
    print(f"{r['workload']:<10} {r['rounds']:>6} {1 / ref['median_wall_per_iteration']:14.4f} {1 / ours['median_wall_per_iteration']:10.4f} "
          f"{r['ratio_wall']:11.2f} {ref['median_cpu_per_iteration']:12.3f} {ours['median_cpu_per_iteration']:13.3f} {r['ratio_cpu']:10.2f} "
          f"{('yes' if all(ok) else 'NO') if ok else '-':>9} {ours.get('peak_working_set_mb', 0):12.1f}")
EOF
  exit 0
fi
for ((r = 1; r <= repeat; r++)); do
  done_reference=","
  for w in "${workloads[@]}"; do
    ref="$(reference_of "$w")"
    if [[ "$done_reference" != *",$ref,"* ]]; then
      echo "[$r/$repeat] reference $ref ..." >&2
      env $reference_env /usr/bin/python3 "$here/reference_cpu.py" --reference "$reference" --threads "$threads" --seconds "$seconds" --only "$ref" \
        | sed "s/^{/{\"repeat\": $r, /" >> "$results"
      done_reference="$done_reference$ref,"
    fi
    if [[ -n "$baseline" ]]; then
      echo "[$r/$repeat] baseline $w ..." >&2
      "$baseline" --threads "$threads" --seconds "$seconds" --only "$w" \
        | sed -e "s/^{/{\"repeat\":$r,/" -e 's/"impl":"mlreward"/"impl":"baseline"/' >> "$results" || true
    fi
    echo "[$r/$repeat] mlreward $w ..." >&2
    "$ours" --threads "$threads" --seconds "$seconds" --only "$w" | sed "s/^{/{\"repeat\":$r,/" >> "$results"
  done
done
[[ -z "$out" ]] || cp "$results" "$out"

# 4. The table.
/usr/bin/python3 - "$results" "$only" "$threads" "$seconds" <<'EOF'
import json, statistics, sys
path, only, threads, seconds = sys.argv[1], sys.argv[2].split(","), sys.argv[3], sys.argv[4]
rows = [json.loads(l) for l in open(path) if l.strip().startswith("{")]
def pick(impl, workload, key):
    v = [r[key] for r in rows if r.get("impl") == impl and r.get("workload") == workload and r.get(key) is not None]
    return statistics.median(v) if v else None
ref_of = {"W2-cached": "W2", "W4-raw": "W4"}
def fmt(x, spec):
    return format(x, spec) if x is not None else "-"
print(f"threads {threads}, seconds {seconds}; medians over repeats; ratio > 1 = MLReward faster")
head = f"{'workload':<10} {'reference it/s':>14} {'ours it/s':>10} {'ratio(wall)':>11} {'ref CPU s/it':>12} {'ours CPU s/it':>13} {'ratio(CPU)':>10} {'params ok':>9} {'ours peak MB':>12}"
print(head)
print("-" * len(head))
for w in only:
    ref = ref_of.get(w, w)
    rp, op = pick("pytorch", ref, "per_second"), pick("mlreward", w, "per_second")
    rc, oc = pick("pytorch", ref, "cpu_seconds_per_iteration"), pick("mlreward", w, "cpu_seconds_per_iteration")
    ok = []
    for key in ("unet_params", "reward_params"):
        r, o = pick("pytorch", ref, key), pick("mlreward", w, key)
        if r is not None and o is not None:
            ok.append(r == o)
    print(f"{w:<10} {fmt(rp, '14.4f')} {fmt(op, '10.4f')} {fmt(op / rp if rp and op else None, '11.2f')} "
          f"{fmt(rc, '12.3f')} {fmt(oc, '13.3f')} {fmt(rc / oc if rc and oc else None, '10.2f')} "
          f"{('yes' if all(ok) else 'NO') if ok else '-':>9} {fmt(pick('mlreward', w, 'peak_working_set_mb'), '12.1f')}")
if any(r.get("impl") == "baseline" for r in rows):
    print()
    head = f"{'workload':<10} {'baseline it/s':>13} {'ours it/s':>10} {'speed-up(wall)':>14} {'baseline CPU s/it':>17} {'ours CPU s/it':>13} {'speed-up(CPU)':>13}"
    print(head)
    print("-" * len(head))
    for w in only:
        bp, op = pick("baseline", w, "per_second"), pick("mlreward", w, "per_second")
        bc, oc = pick("baseline", w, "cpu_seconds_per_iteration"), pick("mlreward", w, "cpu_seconds_per_iteration")
        print(f"{w:<10} {fmt(bp, '13.4f')} {fmt(op, '10.4f')} {fmt(op / bp if bp and op else None, '14.2f')} "
              f"{fmt(bc, '17.3f')} {fmt(oc, '13.3f')} {fmt(bc / oc if bc and oc else None, '13.2f')}")
EOF
