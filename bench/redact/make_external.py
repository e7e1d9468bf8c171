"""Writes a labelled PII set this project did not generate.

Generator: presidio-evaluator's PresidioSentenceFaker (Microsoft, MIT licence),
which fills its own 200+ sentence templates with Faker values and records the
character span of every value. Spans are converted to UTF-8 byte offsets and
labels are kept as the generator writes them; the Rust evaluator maps them
(STREET_ADDRESS -> ADDRESS, DOMAIN_NAME -> URL, ...) and ignores types we do
not detect (ORGANIZATION, GPE, DATE_TIME, TITLE, ...).

Usage: python make_external.py OUT.jsonl [N] [SEED]
"""
import json
import random
import sys

import datetime as _dt

import faker.providers.date_time as _faker_dates
import numpy as np
from presidio_evaluator.data_generator import PresidioSentenceFaker


class _FixedClock(_dt.datetime):
    """Faker draws dates relative to the clock: a fixed "now" makes a seed's sentences the same on every run."""

    @classmethod
    def now(cls, tz=None):
        return cls(2025, 1, 1, tzinfo=tz or _dt.timezone.utc)


class _FixedDate(_dt.date):
    @classmethod
    def today(cls):
        return cls(2025, 1, 1)


_faker_dates.datetime = _FixedClock
_faker_dates.dtdate = _FixedDate

out = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
seed = int(sys.argv[3]) if len(sys.argv) > 3 else 42

# PresidioSentenceFaker seeds Faker and `random` only after loading its person records, whose full names draw a
# middle initial from `random`: seed first, or the same seed gives different sentences from run to run.
random.seed(seed)
np.random.seed(seed)
faker = PresidioSentenceFaker("en_US", lower_case_ratio=0.05, random_seed=seed)
samples = faker.generate_new_fake_sentences(num_samples=n)


def byte_offset(text, char_index):
    return len(text[:char_index].encode("utf-8"))


with open(out, "w", encoding="utf-8") as f:
    for i, s in enumerate(samples):
        text = s.full_text
        spans = [
            {
                "start": byte_offset(text, sp.start_position),
                "end": byte_offset(text, sp.end_position),
                "type": sp.entity_type,
            }
            for sp in s.spans
        ]
        f.write(json.dumps({"id": f"ext:{i}", "text": text, "spans": spans}, ensure_ascii=False) + "\n")
print(f"wrote {len(samples)} samples to {out}")
