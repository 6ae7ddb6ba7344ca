"""A small data-parallel trainer in TensorFlow 1.x style, on varscope.

Logistic regression on a synthetic, linearly separable problem. Every
process runs this file: the chief creates the weights (with Adam on the
server), the workers wait for them by name, and each worker pushes
gradients of its own share of the data; the server applies them. The
chief then checks the loss on the whole data set.

    python3 trainer.py --server=127.0.0.1:50051 --role=worker --task=0 --workers=2 &
    python3 trainer.py --server=127.0.0.1:50051 --role=worker --task=1 --workers=2 &
    python3 trainer.py --server=127.0.0.1:50051 --role=chief --workers=2 --max_final_loss=0.3
"""

import argparse
import sys

import numpy as np

import varscope as vs

FEATURES = 8
STEPS = 150


def data():
    """The same data set in every process (fixed seed)."""
    rng = np.random.default_rng(42)
    x = rng.normal(size=(2000, FEATURES)).astype(np.float32)
    true_w = rng.normal(size=FEATURES).astype(np.float32)
    y = (x @ true_w > 0).astype(np.float32)
    return x, y


def model(wait):
    """The shared weights, by name: a worker fetches them (reuse=True),
    waiting up to `wait` seconds for the chief to create them."""
    with vs.variable_scope("logreg", reuse=True):
        # The chief creates "done" last, once the optimizer is set.
        done = vs.get_variable("done", [], dtype=vs.int32, wait=wait)
        w = vs.get_variable("w", [FEATURES])
        b = vs.get_variable("b", [])
    return w, b, done


def loss_and_gradients(w, b, x, y):
    logits = x @ w + b
    p = 1.0 / (1.0 + np.exp(-logits))
    loss = float(np.mean(np.logaddexp(0.0, logits) - y * logits))
    error = (p - y) / len(y)
    return loss, (x.T @ error).astype(np.float32), np.float32(error.sum())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--role", choices=["chief", "worker"], required=True)
    parser.add_argument("--task", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max_final_loss", type=float, default=0.3)
    args = parser.parse_args()

    vs.connect(args.server)
    x, y = data()
    if args.role == "chief":
        with vs.variable_scope("logreg"):
            w = vs.get_variable("w", [FEATURES], initializer=vs.zeros_initializer())
            b = vs.get_variable("b", [], initializer=vs.zeros_initializer())
            vs.set_optimizer([w, b], vs.train.AdamOptimizer(0.05))
            done = vs.get_variable("done", [], dtype=vs.int32,
                                   initializer=vs.zeros_initializer(), trainable=False)
        # Wait (no polling) until every worker has pushed all its steps.
        finished, version = done.pull_versioned()
        while int(finished) < args.workers:
            done.wait_for_newer_than(version, timeout=60)
            finished, version = done.pull_versioned()
        loss, _, _ = loss_and_gradients(w.pull(), b.pull(), x, y)
        print(f"final loss {loss:.4f} after {STEPS} steps on each of {args.workers} workers")
        return 0 if loss <= args.max_final_loss else 1

    w, b, done = model(wait=60)
    rows = slice(args.task, None, args.workers)  # this worker's share
    xs, ys = x[rows], y[rows]
    for _ in range(STEPS):
        _, gw, gb = loss_and_gradients(w.pull(), b.pull(), xs, ys)
        vs.push_many({w: ("apply_gradient", gw), b: ("apply_gradient", gb)})
    done.assign_add(1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
