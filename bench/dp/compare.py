"""Reference values from Google's dp_accounting for the consentry-dp accountant.

Writes a JSON of, per grid point, the RDP accountant's epsilon with dp_accounting's own conversion
(`RdpAccountant.get_epsilon_and_optimal_order`, "improved") and with the classic conversion
eps = min_a rdp(a) + log(1/delta)/(a-1) (TF Privacy's historical `get_privacy_spent`, computed here from
dp_accounting's RDP since dp_accounting no longer ships it), plus one-step RDP curves per (q, sigma).

    python compare.py OUT.json              # full bench grid + random points
    python compare.py --fixture OUT.json    # the small snapshot kept as a cargo test fixture

Infinite values are written as null (JSON has no infinity).
"""

import argparse
import importlib.metadata
import json
import math
import random
import sys

from dp_accounting import dp_event
from dp_accounting.rdp import rdp_privacy_accountant as rdp_lib
from absl import logging

# dp_accounting logs a warning for every order it drops; the JSON records them as null instead.
logging.set_verbosity(logging.ERROR)


def fin(x):
    x = float(x)
    return x if math.isfinite(x) else None


def accountant(q, sigma, steps):
    acc = rdp_lib.RdpAccountant()  # DEFAULT_RDP_ORDERS, add-or-remove-one neighbours
    event = dp_event.SelfComposedDpEvent(
        dp_event.PoissonSampledDpEvent(q, dp_event.GaussianDpEvent(sigma)), steps
    )
    acc.compose(event)
    return acc


def classic(orders, rdp, delta):
    best = (math.inf, orders[0])
    for a, r in zip(orders, rdp):
        e = r - math.log(delta) / (a - 1)
        if e < best[0]:
            best = (e, a)
    return best


def point(q, sigma, steps, delta):
    acc = accountant(q, sigma, steps)
    eps_i, order_i = acc.get_epsilon_and_optimal_order(delta)
    eps_c, order_c = classic(list(acc.orders), list(acc.rdp), delta)
    return {
        "q": q, "sigma": sigma, "steps": steps, "delta": delta,
        "eps_improved": fin(eps_i), "order_improved": float(order_i),
        "eps_classic": fin(eps_c), "order_classic": float(order_c),
    }


def curve(q, sigma, order_stride):
    orders = list(rdp_lib.DEFAULT_RDP_ORDERS)[::order_stride]
    rdp = rdp_lib._compute_rdp_poisson_subsampled_gaussian(q, sigma, orders)
    # Orders dp_accounting drops: _compute_log_a_frac hit _MAX_STEPS_LOG_A_FRAC and returned inf.
    return {"q": q, "sigma": sigma, "orders": [float(o) for o in orders], "rdp": [fin(r) for r in rdp]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--fixture", action="store_true", help="small snapshot for cargo test")
    ap.add_argument("--random", type=int, default=400, help="random points on top of the grid (bench only)")
    args = ap.parse_args()

    if args.fixture:
        qs = [1e-4, 1e-3, 0.01, 0.1, 0.5, 1.0]
        sigmas = [0.5, 0.8, 1.0, 2.0, 5.0, 20.0]
        steps_list = [1, 100, 10_000, 100_000]
        deltas = [1e-5, 1e-8]
        curve_pairs = [(q, s) for q in qs for s in sigmas]
        stride = 5
        n_random = 0
    else:
        qs = [1e-4, 3e-4, 1e-3, 4e-3, 0.01, 0.03, 0.1, 0.3, 0.5, 0.9, 0.99, 1.0]
        sigmas = [0.5, 0.6, 0.8, 1.0, 1.1, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0]
        steps_list = [1, 10, 100, 1_000, 10_000, 100_000]
        deltas = [1e-5, 1e-8]
        curve_pairs = [(q, s) for q in qs for s in sigmas]
        stride = 1
        n_random = args.random

    points = []
    for q in qs:
        for s in sigmas:
            for t in steps_list:
                for d in deltas:
                    points.append(point(q, s, t, d))
    rng = random.Random(20250101)
    for _ in range(n_random):
        q = 10 ** rng.uniform(-4, 0)
        s = 10 ** rng.uniform(math.log10(0.5), math.log10(20))
        t = int(round(10 ** rng.uniform(0, 5)))
        d = rng.choice([1e-5, 1e-6, 1e-8])
        points.append(point(q, s, t, d))
        curve_pairs.append((q, s))
    curves = [curve(q, s, stride) for q, s in curve_pairs]

    meta = {
        "source": f"dp_accounting {importlib.metadata.version('dp-accounting')}",
        "python": sys.version.split()[0],
        "orders": [float(o) for o in rdp_lib.DEFAULT_RDP_ORDERS],
        "max_steps_log_a_frac": rdp_lib._MAX_STEPS_LOG_A_FRAC,
    }
    with open(args.out, "w") as f:
        json.dump({"meta": meta, "curves": curves, "points": points}, f, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {args.out}: {len(points)} points, {len(curves)} curves", file=sys.stderr)


if __name__ == "__main__":
    main()
