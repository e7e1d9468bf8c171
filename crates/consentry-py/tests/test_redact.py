"""consentry.Redactor: the gate's detector and redaction, character offsets, Arrow arrays with nulls."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import consentry

TEXT = "Grüße — schreib Anna Müller an anna.mueller@example.com oder ruf +49 30 1234567 an 🙂"


def test_spans_are_character_offsets_into_the_python_string():
    r = consentry.Redactor(["Anna Müller"])
    spans = r.spans(TEXT)
    assert [s.kind for s in spans] == ["PERSON", "EMAIL", "PHONE"]
    for s in spans:
        assert TEXT[s.start : s.end] == s.text
        assert 0 < s.score <= 1
    assert spans[0].text == "Anna Müller"
    assert "Anna Müller" not in r.redact(TEXT) and "@" not in r.redact(TEXT)
    assert r.spans("") == [] and r.redact("") == ""


def test_member_names_are_recognised():
    # Without the directory the capitalised pair is only a guess; with it, a member's name is certain.
    [guess] = consentry.Redactor().spans("ask Zyxwa Qwertz")
    [known] = consentry.Redactor(["Zyxwa Qwertz"]).spans("ask Zyxwa Qwertz")
    assert guess.kind == known.kind == "PERSON" and known.text == "Zyxwa Qwertz"
    assert guess.score < 0.9 <= known.score


@pytest.mark.parametrize("typ", [pa.string(), pa.large_string()])
def test_redact_array_keeps_type_length_and_nulls(typ):
    r = consentry.Redactor(["Anna Müller"])
    values = [TEXT, None, "nothing here", "", None] * 500
    arr = pa.array(values, type=typ)
    out = r.redact_array(arr)
    assert out.type == typ and len(out) == len(arr)
    assert out.null_count == arr.null_count
    assert out.to_pylist() == [None if v is None else r.redact(v) for v in values]
    # A slice (an offset into shared buffers) is read where it starts.
    assert r.redact_array(arr.slice(1, 3)).to_pylist() == [None, "nothing here", ""]


def test_redact_array_refuses_other_types():
    with pytest.raises(consentry.BadInput, match="string"):
        consentry.Redactor().redact_array(pa.array([1, 2]))


def test_redaction_equals_the_gates(session, data_dir: Path, position, tmp_path):
    purpose = "train_ai_system.content_suggestions"
    out = tmp_path / "posts"
    session.gate(purpose, out, at=position)
    gated = session.dataset(out).to_table("posts", columns=["post_id", "text"])
    assert gated.num_rows > 0
    net = data_dir / "network"
    members = pq.read_table(net / "members.parquet", columns=["given_name", "surname"]).to_pylist()
    names = [f"{m['given_name']} {m['surname']}" for m in members]
    raw = pq.read_table(net / "posts.parquet", columns=["post_id", "text"])
    raw = raw.filter(pc.is_in(raw.column("post_id"), gated.column("post_id")))
    ids = gated.column("post_id").to_pylist()
    original = dict(zip(raw.column("post_id").to_pylist(), raw.column("text").to_pylist()))
    redacted = consentry.Redactor(names).redact_array(raw.column("text").combine_chunks())
    ours = dict(zip(raw.column("post_id").to_pylist(), redacted.to_pylist()))
    assert [ours[i] for i in ids] == gated.column("text").to_pylist()
    # The comparison means something: some posts had PII the gate removed.
    assert sum(ours[i] != original[i] for i in ids) > 0
