#!/usr/bin/env bash
# Package consumer test: packs the three libraries into a temporary folder, builds and publishes tests/PackageConsumer
# against those packages alone on Microsoft.ML 6.0.0 (MLNET_VERSION overrides), then trains, saves, loads and scores
# in two processes. Fails on the first unmet expectation. Called by .ci/run; about a minute on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

mlnet="${MLNET_VERSION:-6.0.0}"
work="$(mktemp -d)"
trap '[ -n "${KEEP_WORK:-}" ] || rm -rf "$work"' EXIT
fail() { echo "consumer-test: FAILED: $*" >&2; exit 1; }
start=$SECONDS

version="$(dotnet msbuild Microsoft.ML.RewardExtraction/Microsoft.ML.RewardExtraction.csproj -getProperty:Version)"
ids=(MLReward.RewardExtraction MLReward.RewardExtraction.Transforms MLReward.RewardExtraction.Estimators)
for project in Microsoft.ML.RewardExtraction/Microsoft.ML.RewardExtraction.csproj \
               Transforms/Microsoft.ML.RewardExtraction.Transforms.csproj \
               Estimators/Microsoft.ML.RewardExtraction.Estimators.csproj; do
  dotnet pack "$project" -c Release -o "$work/packages" -v:q -nologo
done

# What the packages hold and declare.
for id in "${ids[@]}"; do
  nupkg="$work/packages/$id.$version.nupkg"
  [ -f "$nupkg" ] && [ -f "$work/packages/$id.$version.snupkg" ] || fail "$id $version: no .nupkg and .snupkg"
  files="$(unzip -Z1 "$nupkg")"
  nuspec="$(unzip -p "$nupkg" "$id.nuspec")"
  for f in LICENSE README.md; do grep -qx "$f" <<<"$files" || fail "$id: no $f"; done
  grep -q '<license type="file">LICENSE</license>' <<<"$nuspec" || fail "$id: licence not declared"
  grep -q '<readme>README.md</readme>' <<<"$nuspec" || fail "$id: readme not declared"
  if grep -qi 'libtorch' <<<"$nuspec"; then fail "$id: depends on a native libtorch package"; fi
  if grep -q 'id="Microsoft.ML.TorchSharp"' <<<"$nuspec"; then fail "$id: depends on Microsoft.ML.TorchSharp"; fi
done
core_files="$(unzip -Z1 "$work/packages/MLReward.RewardExtraction.$version.nupkg")"
for f in buildTransitive/MLReward.RewardExtraction.targets build/MLReward.RewardExtraction.targets; do
  grep -qx "$f" <<<"$core_files" || fail "MLReward.RewardExtraction: no $f"
done
grep -q '<dependency id="Microsoft.ML" version="\[5.0.1, 7.0.0)"' \
  <<<"$(unzip -p "$work/packages/MLReward.RewardExtraction.Transforms.$version.nupkg" MLReward.RewardExtraction.Transforms.nuspec)" \
  || fail "Transforms: Microsoft.ML range is not [5.0.1, 7.0.0)"

# The NuGet cache keeps a package by id and version: drop copies from earlier runs so that this build's are used.
cache="${NUGET_PACKAGES:-$HOME/.nuget/packages}"
for id in "${ids[@]}"; do rm -rf "$cache/${id,,}/$version"; done
rm -rf tests/PackageConsumer/bin tests/PackageConsumer/obj

# Build (bin/) and publish (a folder of its own); the consumer's nuget.config reads the packages' folder from here.
export MLREWARD_PACKAGE_SOURCE="$work/packages"
dotnet publish tests/PackageConsumer/PackageConsumer.csproj -c Release -o "$work/publish" -nologo -v:q \
  -p:MLRewardVersion="$version" -p:MLNetVersion="$mlnet"
built=tests/PackageConsumer/bin/Release/net10.0

# It was built from the packages, with the ML.NET asked for, and the GLIBCXX fix came from the core package.
deps="$built/PackageConsumer.deps.json"
grep -q "\"MLReward.RewardExtraction.Estimators/$version\": {" "$deps" || fail "deps.json lacks the Estimators package"
if grep -q '"Microsoft.ML.RewardExtraction.Estimators/' "$deps"; then fail "deps.json names a project, not a package"; fi
grep -q "\"Microsoft.ML/$mlnet\": {" "$deps" || fail "deps.json lacks Microsoft.ML $mlnet"
# Every file its build imports, from MSBuild's preprocessed project: none of the repository's, the package's fix included.
dotnet msbuild tests/PackageConsumer/PackageConsumer.csproj -pp:"$work/preprocessed.xml" -p:MLRewardVersion="$version" -p:MLNetVersion="$mlnet" >/dev/null
imports="$(grep -o "/[^ \"]*\.\(props\|targets\)" "$work/preprocessed.xml" | sort -u)"
leaked="$(grep "^$PWD/" <<<"$imports" | grep -v "^$PWD/tests/PackageConsumer/" || true)"
[ -z "$leaked" ] || fail "the consumer imports the repository's build files: $leaked"
grep -qx "$cache/mlreward.rewardextraction/$version/buildTransitive/MLReward.RewardExtraction.targets" <<<"$imports" \
  || fail "the core package's buildTransitive targets were not imported"
# (grep -q on a here-string, not a pipe: with pipefail, grep -q quitting early can fail the writer with SIGPIPE.)
weak() { grep -q 'Name: GLIBCXX_3.4.32  Flags: WEAK' <<<"$(readelf -V "$1")"; }
weak "$built/runtimes/linux-x64/native/libLibTorchSharp.so" || fail "build output: GLIBCXX_3.4.32 not marked weak"
weak "$work/publish/runtimes/linux-x64/native/libLibTorchSharp.so" || fail "publish output: GLIBCXX_3.4.32 not marked weak"
if weak "$cache/torchsharp/0.107.0/runtimes/linux-x64/native/libLibTorchSharp.so"; then fail "the NuGet cache's copy was patched"; fi
if ! grep -q GLIBCXX_3.4.32 "$(ldconfig -p | awk '/libstdc\+\+\.so\.6 .*x86-64/ {print $NF; exit}')"; then
  echo "consumer-test: this machine's libstdc++ lacks GLIBCXX_3.4.32, so loading TorchSharp below relies on the fix"
fi

# Train and save from the build output, then load and score in a fresh process from the publish output.
"$built/PackageConsumer" train "$work/run" | tee "$work/train.txt"
"$work/publish/PackageConsumer" score "$work/run" | tee "$work/score.txt"
for out in train score; do
  grep -qx "ml.net=$mlnet" "$work/$out.txt" || fail "$out: Microsoft.ML $mlnet did not load"
done
grep -qx 'stages=TrajectoryWindowTransformer,DiffusionModelTransformer,DiffusionModelTransformer,RelativeRewardTransformer' \
  "$work/score.txt" || fail "the loaded model is not windows -> base -> expert -> reward"
grep -q '^ok: loaded .* scores identical' "$work/score.txt" || fail "scores of the loaded model"

echo "consumer-test: passed (MLReward $version on Microsoft.ML $mlnet, $((SECONDS - start)) s)"
