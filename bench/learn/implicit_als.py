"""The peer for the job-recommendation comparison: implicit's AlternatingLeastSquares (CPU, conjugate gradient) on
the S = 1 split exported by `cargo bench -p consentry-learn --bench learn -- --mode export`.

    implicit_als.py EXPORT_DIR OUT.txt [--factors F] [--reg R] [--alpha A] [--iterations N] [--conf hu|implicit]
                    [--threads T] [--seed S]
    implicit_als.py EXPORT_DIR --grid OUT_DIR [--threads T]

Confidence. Ours is Hu et al.'s c = 1 + alpha * w (w = summed interaction weight). implicit >= 0.5 treats the matrix
values themselves as the confidence c (its CG solve uses YtY + Yt(C - I)Y and b = Yt C p), after multiplying by its
own `alpha`. So `--conf hu` passes the matrix 1 + alpha * w with implicit's alpha = 1 (identical objective to ours);
`--conf implicit` passes w with implicit's alpha = A (c = A * w, the library's own convention).

Writes one line per held-out member: `member_id item_id ... item_id` (top 20, already-liked items filtered), which
our bench binary scores (`--mode score`) with the same code as our model. Prints `RESULT fit <seconds>`.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from implicit.cpu.als import AlternatingLeastSquares  # noqa: E402


def load(export):
    members = np.loadtxt(os.path.join(export, "members.txt"), dtype=np.uint64, ndmin=1)
    items = np.loadtxt(os.path.join(export, "items.txt"), dtype=np.uint64, ndmin=1)
    t = np.loadtxt(os.path.join(export, "train.csv"), delimiter=",", skiprows=1, ndmin=2)
    h = np.loadtxt(os.path.join(export, "heldout.csv"), delimiter=",", skiprows=1, dtype=np.int64, ndmin=2)
    w = sp.csr_matrix(
        (t[:, 2].astype(np.float32), (t[:, 0].astype(np.int64), t[:, 1].astype(np.int64))),
        shape=(len(members), len(items)),
    )
    w.sum_duplicates()
    w.sort_indices()
    users = np.unique(h[:, 0])
    with open(os.path.join(export, "hyper.json")) as f:
        hyper = json.load(f)
    return members, items, w, users, hyper


def fit_and_write(members, items, w, users, out, factors, reg, alpha, iterations, conf, threads, seed):
    if conf == "hu":
        c = w.copy()
        c.data = 1.0 + alpha * c.data
        model_alpha = 1.0
    else:
        c = w
        model_alpha = alpha
    c = c.astype(np.float32).tocsr()
    model = AlternatingLeastSquares(
        factors=factors,
        regularization=reg,
        alpha=model_alpha,
        iterations=iterations,
        use_cg=True,
        use_native=True,
        num_threads=threads,
        random_state=seed,
        calculate_training_loss=False,
    )
    t0 = time.perf_counter()
    model.fit(c, show_progress=False)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ids, _ = model.recommend(users, c[users], N=20, filter_already_liked_items=True)
    rec_s = time.perf_counter() - t0
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        for u, row in zip(users, ids):
            f.write(str(members[u]))
            for j in row:
                if j >= 0:
                    f.write(" " + str(items[j]))
            f.write("\n")
    os.replace(tmp, out)
    return fit_s, rec_s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("export")
    ap.add_argument("out", nargs="?")
    ap.add_argument("--grid")
    ap.add_argument("--factors", type=int)
    ap.add_argument("--reg", type=float)
    ap.add_argument("--alpha", type=float)
    ap.add_argument("--iterations", type=int)
    ap.add_argument("--conf", choices=["hu", "implicit"], default="hu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int)
    a = ap.parse_args()
    members, items, w, users, hyper = load(a.export)
    factors = a.factors or hyper["factors"]
    reg = a.reg if a.reg is not None else hyper["reg"]
    alpha = a.alpha if a.alpha is not None else hyper["alpha"]
    iterations = a.iterations or hyper["iterations"]
    seed = a.seed if a.seed is not None else hyper["seed"]
    if a.grid:
        os.makedirs(a.grid, exist_ok=True)
        for f_ in (32, 64):
            for r in (0.01, 0.1, 1.0):
                for al in (1.0, 10.0, 40.0):
                    for conf in ("hu", "implicit"):
                        name = f"implicit_f{f_}_r{r:g}_a{al:g}_{conf}"
                        fit_s, _ = fit_and_write(
                            members, items, w, users, os.path.join(a.grid, name + ".txt"),
                            f_, r, al, iterations, conf, a.threads, seed,
                        )
                        print(f"RESULT grid {name} {fit_s:.3f}", flush=True)
        return
    if not a.out:
        sys.exit("OUT.txt or --grid DIR is required")
    fit_s, rec_s = fit_and_write(members, items, w, users, a.out, factors, reg, alpha, iterations, a.conf, a.threads, seed)
    print(
        f"implicit ALS: {w.shape[0]} users x {w.shape[1]} items, {w.nnz} entries; factors {factors}, reg {reg}, "
        f"alpha {alpha} ({a.conf}), {iterations} iterations, {a.threads} threads: fit {fit_s:.2f} s, "
        f"top-20 for {len(users)} users {rec_s:.2f} s"
    )
    print(f"RESULT fit {fit_s:.3f}")


if __name__ == "__main__":
    main()
