#!/usr/bin/env bash
# The device check for a CUDA machine (Linux x64 with an NVIDIA driver, and a NuGet source that serves
# TorchSharp-cuda-linux; this project's registry does not, so CI never runs this):
#   1. builds the quick start and the Model-Builder-style consumer with the CUDA natives (-p:TorchBackend=cuda);
#   2. runs the quick start on the CPU and on GPU 0 (MLContext.GpuDeviceId = 0, FallbackToCpu off, so a GPU that cannot
#      be used fails loudly) and prints both held-out results and times;
#   3. loads the GPU-trained zip in a CPU process and scores with it (files carry no device);
#   4. times W1-W4 on the CPU of the same machine, for scale.
# Usage: bash Examples/Benchmarks/cuda-check.sh [OUT]   (default out/cuda-check)
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-out/cuda-check}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || { echo "cuda-check: no NVIDIA GPU here" >&2; exit 1; }

for project in QuickStart ModelBuilderStyle Benchmarks; do
  dotnet build "Examples/$project" -c Release -p:TorchBackend=cuda -o "$out/bin-$project" -v:q -nologo
done

quick="$out/bin-QuickStart/mlreward-quickstart"
for device in cpu gpu; do
  args=("$out/$device"); [ "$device" = gpu ] && args+=(--gpu 0)
  start=$SECONDS
  "$quick" "${args[@]}" | tee "$out/$device.log"
  echo "cuda-check: quick start on $device: $((SECONDS - start)) s"
done
echo "cuda-check: held-out, CPU: $(grep -o 'AUC [0-9.]*' "$out/cpu.log"); GPU: $(grep -o 'AUC [0-9.]*' "$out/gpu.log")"

"$out/bin-ModelBuilderStyle/mlreward-consume" "$out/gpu/reward-model.zip" | tee "$out/consume.log"

"$out/bin-Benchmarks/mlreward-bench" --threads 1 --seconds 10 | tee "$out/workloads-cpu.jsonl"
echo "cuda-check: done; logs in $out"
