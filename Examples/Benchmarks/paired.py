#!/usr/bin/env python3
"""Paired timing of one workload: the PyTorch reference and MLReward's benchmark run as two processes that take turns,
one iteration each (the first to go alternates), so that both see the same load on a shared, noisy machine.

  paired.py --reference-cmd "python3 reference_cpu.py ... --only W1" --ours-cmd "mlreward-bench ... --only W1"
            [--seconds 10] [--min-iterations 2] [--max-iterations 1000]

Each command must accept --paired (READY / go / ITER protocol, see reference_cpu.py). Iterations continue until each
side has spent --seconds of wall time in timed iterations (and at least --min-iterations each). Prints one JSON object:
per side the median wall and CPU seconds per iteration and the final RESULT line's fields; and the median over rounds
of the per-round ratios reference/ours (wall and CPU).
"""
import argparse
import json
import shlex
import statistics
import subprocess
import sys


class Side:
    def __init__(self, name, command):
        self.name = name
        self.proc = subprocess.Popen(shlex.split(command) + ["--paired"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)
        self.walls, self.cpus, self.result = [], [], None

    def expect(self, prefix):
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"{self.name} exited (code {self.proc.poll()}) while waiting for {prefix}")
            line = line.strip()
            if line.startswith(prefix):
                return line[len(prefix):].strip()
            if line.startswith("RESULT"):
                self.result = json.loads(line[len("RESULT"):])
                raise RuntimeError(f"{self.name} finished early")
            if line:
                print(f"[{self.name}] {line}", file=sys.stderr)

    def go(self):
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        wall, cpu = (float(v) for v in self.expect("ITER").split())
        self.walls.append(wall)
        self.cpus.append(cpu)
        self.expect("READY")

    def stop(self):
        self.proc.stdin.write("stop\n")
        self.proc.stdin.flush()
        line = self.expect("RESULT")
        self.result = json.loads(line)
        self.proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference-cmd", required=True)
    ap.add_argument("--ours-cmd", required=True)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--min-iterations", type=int, default=2)
    ap.add_argument("--max-iterations", type=int, default=1000)
    a = ap.parse_args()
    ref, ours = Side("reference", a.reference_cmd), Side("mlreward", a.ours_cmd)
    try:
        ref.expect("READY")    # both warm up concurrently, untimed
        ours.expect("READY")
        rounds = 0
        while rounds < a.max_iterations:
            first, second = (ref, ours) if rounds % 2 == 0 else (ours, ref)
            first.go()
            second.go()
            rounds += 1
            if rounds >= a.min_iterations and sum(ref.walls) >= a.seconds and sum(ours.walls) >= a.seconds:
                break
        ref.stop()
        ours.stop()
    finally:
        for side in (ref, ours):
            if side.proc.poll() is None:
                side.proc.kill()
    out = {"workload": ours.result.get("workload"), "rounds": len(ours.walls),
           "ratio_wall": statistics.median(r / o for r, o in zip(ref.walls, ours.walls)),
           "ratio_cpu": statistics.median(r / o for r, o in zip(ref.cpus, ours.cpus) if o > 0)}
    for side in (ref, ours):
        out[side.name] = dict(side.result, median_wall_per_iteration=statistics.median(side.walls),
                              median_cpu_per_iteration=statistics.median(side.cpus))
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
