"""The DuckDB side of the gate benchmark: semi-join the events to the allowed members, write Parquet."""
import sys
import time

import duckdb

d = sys.argv[1]
threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
con = duckdb.connect()
con.execute(f"SET threads = {threads}")
rows_in = con.execute(f"SELECT count(*) FROM read_parquet('{d}/events/*.parquet')").fetchone()[0]
t0 = time.perf_counter()
con.execute(
    f"""COPY (SELECT e.* FROM read_parquet('{d}/events/*.parquet') e
              SEMI JOIN read_parquet('{d}/consent.parquet') c USING (member_id))
        TO '{d}/duckdb-out.parquet' (FORMAT parquet, COMPRESSION zstd)"""
)
s = time.perf_counter() - t0
rows_out = con.execute(f"SELECT count(*) FROM read_parquet('{d}/duckdb-out.parquet')").fetchone()[0]
print(f"duckdb {duckdb.__version__}: {rows_in} rows in, {rows_out} out, {s:.2f} s, {rows_in / s / 1e6:.2f} M rows/s")
print(f"RESULT {rows_in} {rows_out} {s:.4f}")
