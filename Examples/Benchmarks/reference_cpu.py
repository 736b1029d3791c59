#!/usr/bin/env python3
"""Runs shared/bench/torch_reference.py unchanged, adding the process CPU time (user + system, all threads) of each
workload's timed iterations as `cpu_seconds` and `cpu_seconds_per_iteration` (the C# benchmark prints the same keys).

  /usr/bin/python3 reference_cpu.py [--reference PATH] [--threads 2] [--seconds 10] [--only W1,W2] [--paired]

--paired: driven by paired.py. Before each timed iteration print READY and wait for "go" (or "stop") on stdin; after it
print "ITER wall cpu". The JSON line is then prefixed with RESULT.

Only the reference's `timed` helper is wrapped (same warm-up, same loop, same wall clock); workloads and shapes are the
reference's own code.
"""
import os
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
reference = os.path.join(here, "..", "..", "..", "shared", "bench", "torch_reference.py")
if "--reference" in sys.argv:
    i = sys.argv.index("--reference")
    reference = sys.argv[i + 1]
    del sys.argv[i:i + 2]
sys.path.insert(0, os.path.dirname(os.path.abspath(reference)))
import importlib.util

paired = "--paired" in sys.argv
if paired:
    sys.argv.remove("--paired")

spec = importlib.util.spec_from_file_location("torch_reference", reference)
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)

_last_cpu = {}


def timed(fn, seconds, warmup=2):
    for _ in range(warmup):
        fn()
    if paired:
        n, wall_sum, cpu_sum = 0, 0.0, 0.0
        while True:
            sys.stdout.write("READY\n")
            sys.stdout.flush()
            line = sys.stdin.readline()
            if line.strip() != "go":
                break
            w, c = time.perf_counter(), time.process_time()
            fn()
            dw, dc = time.perf_counter() - w, time.process_time() - c
            sys.stdout.write("ITER %r %r\n" % (dw, dc))
            sys.stdout.flush()
            n, wall_sum, cpu_sum = n + 1, wall_sum + dw, cpu_sum + dc
        _last_cpu["cpu"] = cpu_sum
        return max(n, 1), max(wall_sum, 1e-9)
    n, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        fn()
        n += 1
    _last_cpu["cpu"] = time.process_time() - cpu
    return n, time.perf_counter() - start


ref.timed = timed
_print = print


def patched_print(*args, **kwargs):
    # The reference prints one json.dumps(...) line per workload: add the CPU time of that workload's timed loop.
    import json
    if len(args) == 1 and isinstance(args[0], str) and args[0].startswith("{") and "cpu" in _last_cpu:
        out = json.loads(args[0])
        iterations = next((out[k] for k in ("steps", "batches", "passes") if k in out), 0)
        out["cpu_seconds"] = _last_cpu["cpu"]
        out["cpu_seconds_per_iteration"] = _last_cpu["cpu"] / iterations if iterations else None
        try:
            import resource
            out["peak_working_set_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)
        except ImportError:
            pass
        _last_cpu.clear()
        args = (("RESULT " if paired else "") + json.dumps(out),)
    _print(*args, **kwargs)


ref.print = patched_print
ref.main()
