"""The DuckDB side of the gate benchmark: semi-join the events to the allowed members, write Parquet.

    duckdb_gate.py DIR [THREADS] [ZSTD_LEVEL]

For a fair comparison both engines write zstd level 1 by default (the gate's default,
`GateOptions::zstd_level`); DuckDB's own default level (3) compresses harder and slower.
"""
import os
import sys
import time

import duckdb

d = sys.argv[1]
threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
level = int(sys.argv[3]) if len(sys.argv) > 3 else 1
con = duckdb.connect()
con.execute(f"SET threads = {threads}")
rows_in = con.execute(f"SELECT count(*) FROM read_parquet('{d}/events/*.parquet')").fetchone()[0]
t0, c0 = time.perf_counter(), time.process_time()
con.execute(
    f"""COPY (SELECT e.* FROM read_parquet('{d}/events/*.parquet') e
              SEMI JOIN read_parquet('{d}/consent.parquet') c USING (member_id))
        TO '{d}/duckdb-out.parquet' (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL {level})"""
)
s, cpu = time.perf_counter() - t0, time.process_time() - c0
rows_out = con.execute(f"SELECT count(*) FROM read_parquet('{d}/duckdb-out.parquet')").fetchone()[0]
size = os.path.getsize(f"{d}/duckdb-out.parquet")
print(
    f"duckdb {duckdb.__version__} (zstd {level}): {rows_in} rows in, {rows_out} out, {s:.2f} s, "
    f"{rows_in / s / 1e6:.2f} M rows/s, {size / 1e6:.1f} MB, {cpu:.2f} CPU s"
)
print(f"RESULT {rows_in} {rows_out} {s:.4f} {size} {cpu:.4f}")
