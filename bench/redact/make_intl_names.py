"""Writes crates/consentry-redact/data/intl_given_names.txt and english_words.txt.

* intl_given_names.txt: international given names (ASCII-folded, lower-case) from
  the PyPI package `nomquamgender` 0.1.4 (Ian Van Buskirk, MIT licence), whose
  name_data.json lists ~720k given names seen among authors of scientific papers
  world-wide. Kept: names of 3-20 ASCII letters with at least MIN_COUNT
  occurrences, that are neither an ordinary lower-case English word (SCOWL) nor already in the US
  Census lists. Independent of Faker's and presidio-evaluator's name lists.
* english_words.txt: every lower-case alphabetic entry of SCOWL size 50 (Debian
  `wamerican`) and its capitalised entries that are not names (places, peoples), used so a run of capitalised ordinary words ("Guilty Pleasures")
  is not taken for a name.

Usage: bench/.venv/bin/pip install nomquamgender==0.1.4 --no-deps
       bench/.venv/bin/python bench/redact/make_intl_names.py
"""
import json
import os
import re

import importlib.util

spec = importlib.util.find_spec("nomquamgender")  # data only: do not import (it needs pandas, unidecode)

MIN_COUNT = 50

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "..", "..", "crates", "consentry-redact", "data")
data = json.load(open(os.path.join(list(spec.submodule_search_locations)[0], "name_data.json"), encoding="utf-8"))

english = set()
with open("/usr/share/dict/american-english", encoding="utf-8", errors="replace") as f:
    for w in f:
        w = w.strip()
        if w and w.isalpha() and w.islower():
            english.add(w)
census = set()
for name in ["given_names.txt", "surnames.txt"]:
    census |= set(open(os.path.join(out, name), encoding="utf-8").read().split())

names = sorted(
    k
    for k, v in data.items()
    if v[1] >= MIN_COUNT and re.fullmatch("[a-z]{3,20}", k) and k not in english and k not in census
)
lower_words = set()
with open("/usr/share/dict/american-english", encoding="utf-8", errors="replace") as f:
    for w in f:
        w = w.strip()
        if w and w.isalpha() and w.islower() and w.isascii():
            lower_words.add(w)
        elif w and w.isalpha() and w[0].isupper() and w.isascii() and w.lower() not in census and w.lower() not in names:
            # Proper nouns of SCOWL that are not names: places, peoples, brands (`Berlin` is a Census surname, so kept out).
            lower_words.add(w.lower())
for name, rows in [("intl_given_names.txt", names), ("english_words.txt", sorted(lower_words))]:
    with open(os.path.join(out, name), "w", encoding="utf-8") as f:
        f.write("\n".join(rows) + "\n")
    print(f"{name}: {len(rows)}")
