"""Input of the Spark benchmark: a Consentry data directory whose ledger holds MEMBERS members, 40 % of whom
granted job recommendations, and an `events` table of ROWS rows over them (the columns of the gate benchmark).

    make_input.py DIR ROWS MEMBERS CONSENTRY_BIN

Deterministic (numpy's PCG64 with a fixed seed). Writes DIR/network/{members,consent_choices}.parquet,
DIR/events/part-NNNN.parquet, DIR/allowed.parquet (the allowed members, for the plain join) and
DIR/sources.toml, then `consentry ledger init` and `consentry ledger import`.
"""
import os
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

PURPOSE = "train_ai_system.job_recommendations"
WORDS = np.array(["remote", "senior", "rust", "data", "engineer", "berlin", "hiring", "team", "lead",
                  "python", "cloud", "startup"])
SOURCES = """[tables.events]
path = "events"
members = ["member_id"]
redact = ["text"]
[tables.events.columns]
item_id = "user.behavior.job_activity"
action = "user.behavior.job_activity"
score = "user.behavior.job_activity"
at = "user.behavior.job_activity"
text = "user.behavior.job_activity"
"""


def main() -> None:
    d, rows, members, exe = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    t0 = time.time()
    rng = np.random.Generator(np.random.PCG64(42))
    os.makedirs(f"{d}/network", exist_ok=True)
    os.makedirs(f"{d}/events", exist_ok=True)
    ids = np.arange(1, members + 1, dtype=np.uint64)
    allowed = ids[rng.random(members) < 0.4]
    n = members
    birth = np.full(n, 3652, dtype=np.int32)  # 1980-01-01
    joined = np.full(n, 1_600_000_000_000, dtype=np.int64)
    pq.write_table(pa.table({
        "member_id": pa.array(ids),
        "given_name": pa.array(np.full(n, "Alex")),
        "surname": pa.array(np.full(n, "Doe")),
        "email": pa.array(np.full(n, "alex@example.com")),
        "phone": pa.array(np.full(n, "+49 30 1234567")),
        "country": pa.array(np.full(n, "DE")),
        "region": pa.nulls(n, pa.string()),
        "jurisdiction": pa.array(np.full(n, "DE")),
        "birth_date": pa.array(birth, pa.date32()),
        "industry": pa.array(np.full(n, "Software")),
        "title": pa.array(np.full(n, "Engineer")),
        "seniority": pa.array(np.full(n, 2, dtype=np.uint8)),
        "skills": pa.array([["rust"]] * n, pa.list_(pa.string())),
        "joined_at": pa.array(joined, pa.timestamp("ms", tz="UTC")),
    }), f"{d}/network/members.parquet")
    k = len(allowed)
    pq.write_table(pa.table({
        "member_id": pa.array(allowed),
        "purpose": pa.array(np.full(k, PURPOSE)),
        "action": pa.array(np.full(k, "grant")),
        "notice_version": pa.array(np.ones(k, dtype=np.uint32)),
        "source": pa.array(np.full(k, "import")),
        "actor": pa.array(np.full(k, "bench")),
        "event_time": pa.array(np.full(k, 1_770_000_000_000, dtype=np.int64), pa.timestamp("ms", tz="UTC")),
    }), f"{d}/network/consent_choices.parquet")
    pq.write_table(pa.table({"member_id": pa.array(allowed)}), f"{d}/allowed.parquet")
    files = 8
    per = -(-rows // files)
    for f in range(files):
        m = min(per, rows - f * per)
        r = rng.integers(0, 2**63, m, dtype=np.int64).astype(np.uint64)
        text = np.array([" ".join(w) for w in WORDS[rng.integers(0, 12, (m, 6))]], dtype=object)
        mail = rng.random(m) < 0.05
        text[mail] = text[mail] + " mail me at user" + (r[mail] % 9973).astype(str) + "@example.com"
        pq.write_table(pa.table({
            "member_id": pa.array(r % np.uint64(members) + np.uint64(1)),
            "item_id": pa.array((r >> np.uint64(20)) % np.uint64(100_000)),
            "action": pa.array(np.array(["view", "apply", "save"])[(r >> np.uint64(40)) % np.uint64(3)]),
            "score": pa.array(((r >> np.uint64(8)) % np.uint64(1000)).astype(np.float64) / 1000.0),
            "at": pa.array((1_760_000_000_000 + (r >> np.uint64(16)) % np.uint64(31_536_000_000)).astype(np.int64),
                           pa.timestamp("ms", tz="UTC")),
            "text": pa.array(text, pa.string()),
        }), f"{d}/events/part-{f:04}.parquet", compression="zstd", row_group_size=256 * 1024)
    with open(f"{d}/sources.toml", "w") as fh:
        fh.write(SOURCES)
    print(f"input: {rows} rows, {members} members, {k} allowed ({k / members:.1%}) in {time.time() - t0:.1f} s",
          file=sys.stderr)
    subprocess.run([exe, "--data", d, "-q", "ledger", "init"], check=True)
    subprocess.run([exe, "--data", d, "-q", "ledger", "import", "--choices", f"{d}/network/consent_choices.parquet"],
                   check=True)
    print(f"ledger ready in {time.time() - t0:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
