"""Writes a lower-cased copy of a labelled JSONL set (chat-style text), spans unchanged.

Each character is lower-cased only when its lower-case form has the same UTF-8 length, so every byte offset of the
ground truth stays valid (`İ` and a few others keep their case).

Usage: python lowercase.py IN.jsonl OUT.jsonl
"""
import json
import sys


def lower(text):
    return "".join(c.lower() if len(c.lower().encode("utf-8")) == len(c.encode("utf-8")) else c for c in text)


with open(sys.argv[1], encoding="utf-8") as src, open(sys.argv[2], "w", encoding="utf-8") as dst:
    for line in src:
        row = json.loads(line)
        row["text"] = lower(row["text"])
        dst.write(json.dumps(row, ensure_ascii=False) + "\n")
