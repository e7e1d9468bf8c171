"""One run of the Spark benchmark, in a fresh Spark session on local[2]:

    bench_spark.py DIR MODE      MODE: join | gate | gate-redact

join:        a plain left-semi join of the events with the allowed members, written as Parquet (zstd) —
             the query any Spark user would write;
gate:        consentry.spark.write_dataset, redaction off — the same rows, plus the consent rules, the row
             and member commitments and a manifest that `consentry gate verify` accepts;
gate-redact: the same with free-text redaction on.

Prints `RESULT MODE ROWS_OUT SECONDS PEAK_MB CUT`, where SECONDS is the job alone (not Spark's start), PEAK_MB
the largest sum of resident memory over this process and all its descendants (the JVM and the Python workers),
sampled every 100 ms, and CUT the seconds `Session.gate_snapshot` took before the job (the consent snapshot read
from the ledger, the sources' files hashed: the join's counterpart is the allowed-members file it is given).
"""
import os
import shutil
import sys
import threading
import time

PURPOSE = "train_ai_system.job_recommendations"


def tree_rss_mb(root: int) -> float:
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(p))
            rss[int(p)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, [root]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo.extend(children.get(p, []))
    return total / 2**20


class Peak(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak, self.stop = 0.0, False

    def run(self) -> None:
        while not self.stop:
            self.peak = max(self.peak, tree_rss_mb(os.getpid()))
            time.sleep(0.1)


def main() -> None:
    d, mode = sys.argv[1], sys.argv[2]
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "4g")
        .config("spark.sql.shuffle.partitions", "8")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    out = f"{d}/out-{mode}"
    shutil.rmtree(out, ignore_errors=True)
    peak = Peak()
    peak.start()
    t0 = time.perf_counter()
    cut = 0.0
    if mode == "join":
        events = spark.read.parquet(f"{d}/events")
        allowed = spark.read.parquet(f"{d}/allowed.parquet")
        events.join(allowed, "member_id", "left_semi").write.option("compression", "zstd").parquet(out)
        seconds = time.perf_counter() - t0
        rows = spark.read.parquet(out).count()
    else:
        import consentry
        import consentry.spark

        session = consentry.open(d)
        snap = session.gate_snapshot(PURPOSE, sources=f"{d}/sources.toml", redact=mode == "gate-redact")
        cut = time.perf_counter() - t0
        t0 = time.perf_counter()
        m = consentry.spark.write_dataset(spark, snap, out)
        seconds = time.perf_counter() - t0
        rows = m["rows_out"]
    peak.stop = True
    peak.join()
    print(f"RESULT {mode} {rows} {seconds:.3f} {peak.peak:.0f} {cut:.3f}")
    spark.stop()


if __name__ == "__main__":
    main()
