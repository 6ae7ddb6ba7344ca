"""The Python twin of bench/pullpush_bench.cc: the same variable, Pull into
(or Push ASSIGN from) one preallocated NumPy array for --seconds after a
warm-up; prints "<op>_mib_per_s <figure>". With --fresh, pulls allocate a
new array each call (``var.pull()``, the everyday form)."""

import argparse
import time

import numpy as np

import varscope as vs


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", default="127.0.0.1:50051")
    parser.add_argument("--bytes", type=int, default=1 << 20)
    parser.add_argument("--op", choices=["pull", "push"], default="pull")
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--fresh", action="store_true")
    args = parser.parse_args()
    vs.connect(args.server)
    # The root scope re-entered with AUTO_REUSE: whichever side runs first
    # creates the variable.
    with vs.variable_scope(vs.get_variable_scope(), reuse=vs.AUTO_REUSE):
        var = vs.get_variable(f"bench/pullpush_{args.bytes}", [args.bytes // 4],
                              initializer=vs.zeros_initializer())
    buffer = np.ones(args.bytes // 4, dtype=np.float32)
    if args.op == "pull":
        once = var.pull if args.fresh else (lambda: var.pull(out=buffer))
    else:
        once = lambda: var.assign(buffer)  # noqa: E731
    for _ in range(3):
        once()
    calls = 0
    start = time.monotonic()
    end = start + args.seconds
    while time.monotonic() < end:
        once()
        calls += 1
    elapsed = time.monotonic() - start
    label = "pull_fresh" if args.fresh and args.op == "pull" else args.op
    print(f"{label}_mib_per_s {calls * args.bytes / elapsed / (1 << 20):.6g}")


if __name__ == "__main__":
    main()
