"""Turns MovieLens 100K (RecBole's `ml-100k.inter`: user_id, item_id, rating, timestamp) into the platform's tables:
`ratings.parquet` (member_id, movie_id, rating, rated_at), and the ledger's import files `members.parquet`
(member_id, jurisdiction, birth_date) and `choices.parquet` (every member grants the movie purpose under notice 1).

    prepare.py INTER OUT_DIR
"""

import datetime as dt
import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq

PURPOSE = "train_ai_system.movie_recommendations"


def main():
    inter, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    users, items, ratings, times = [], [], [], []
    with open(inter) as f:
        header = f.readline().rstrip("\n").split("\t")
        want = ["user_id:token", "item_id:token", "rating:float", "timestamp:float"]
        if header != want:
            sys.exit(f"{inter}: unexpected header {header}, expected {want}")
        for line in f:
            u, i, r, t = line.rstrip("\n").split("\t")
            users.append(int(u))
            items.append(int(i))
            ratings.append(float(r))
            times.append(int(float(t)) * 1000)
    pq.write_table(
        pa.table(
            {
                "member_id": pa.array(users, pa.uint64()),
                "movie_id": pa.array(items, pa.uint64()),
                "rating": pa.array(ratings, pa.float64()),
                "rated_at": pa.array(times, pa.timestamp("ms")),
            }
        ),
        os.path.join(out, "ratings.parquet"),
    )
    members = sorted(set(users))
    pq.write_table(
        pa.table(
            {
                "member_id": pa.array(members, pa.uint64()),
                "jurisdiction": pa.array(["US"] * len(members), pa.string()),
                "birth_date": pa.array([dt.date(1980, 1, 1)] * len(members), pa.date32()),
            }
        ),
        os.path.join(out, "members.parquet"),
    )
    granted = int(dt.datetime(2026, 2, 1, tzinfo=dt.timezone.utc).timestamp() * 1000)
    pq.write_table(
        pa.table(
            {
                "member_id": pa.array(members, pa.uint64()),
                "purpose": pa.array([PURPOSE] * len(members), pa.string()),
                "action": pa.array(["grant"] * len(members), pa.string()),
                "notice_version": pa.array([1] * len(members), pa.uint32()),
                "source": pa.array(["import"] * len(members), pa.string()),
                "actor": pa.array([f"member:{m}" for m in members], pa.string()),
                "event_time": pa.array([granted] * len(members), pa.timestamp("ms")),
            }
        ),
        os.path.join(out, "choices.parquet"),
    )
    print(f"{len(users)} ratings, {len(members)} members, {len(set(items))} movies")


if __name__ == "__main__":
    main()
