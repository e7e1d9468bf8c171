"""OpenLineage events of real `gate`, `train` and `unlearn` runs, validated against the OpenLineage spec.

Runs the CLI (``CONSENTRY_BIN``, default ``<repo>/target/debug/consentry``) on a small demo data directory with the
file transport, then checks every event line:

* against the vendored OpenLineage JSON schema (``crates/consentry-app/openlineage/spec``, Draft 2020-12, formats
  checked: uuid, date-time, uri), and every facet against the schema its ``_schemaURL`` names (the standard facets'
  vendored schemas, Consentry's own ``ConsentryFacets.json``), all offline through a ``referencing`` registry;
* through the OpenLineage Python client's own event and facet classes (``openlineage-python``): each event and
  standard facet is rebuilt from its fields (an unknown field is a TypeError, a bad time or run id a ValueError)
  and serialised back to the same JSON;
* for the run protocol: one START and one COMPLETE or FAIL per run id, START first; the output facet's commitments
  equal the dataset's ``manifest.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource

REPO = Path(__file__).resolve().parents[3]
SCHEMAS = REPO / "crates" / "consentry-app" / "openlineage"
BIN = Path(os.environ.get("CONSENTRY_BIN", REPO / "target" / "debug" / "consentry"))
SPEC = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
JOBS = "train_ai_system.job_recommendations"
FORMATS = FormatChecker()


def consentry(data: Path, *args: str, env: dict[str, str] | None = None, ok: bool = True) -> subprocess.CompletedProcess:
    """Runs the CLI on `data`; without the OpenLineage variables of the caller's environment."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OPENLINEAGE", "CONSENTRY_"))}
    p = subprocess.run(
        [str(BIN), "--data", str(data), "--quiet", *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    if ok and p.returncode != 0:
        raise AssertionError(f"consentry {' '.join(args)} exited {p.returncode}:\n{p.stderr}")
    return p


def registry() -> Registry:
    """Every vendored schema, by its $id."""
    resources = []
    for path in sorted(SCHEMAS.rglob("*.json")):
        doc = json.loads(path.read_text())
        resources.append((doc["$id"], Resource.from_contents(doc)))
    return Registry().with_resources(resources)


REGISTRY = registry()


def validator(url: str) -> Draft202012Validator:
    """A validator for the schema at `url` (a vendored $id, with a JSON-pointer fragment or none)."""
    return Draft202012Validator({"$ref": url}, registry=REGISTRY, format_checker=FORMATS)


def facets_of(event: dict) -> list[tuple[str, dict]]:
    """(where, facet) for every facet of an event."""
    out = [(f"run.{k}", v) for k, v in (event["run"].get("facets") or {}).items()]
    out += [(f"job.{k}", v) for k, v in (event["job"].get("facets") or {}).items()]
    for side in ("inputs", "outputs"):
        for d in event.get(side) or []:
            for key in ("facets", "inputFacets", "outputFacets"):
                out += [(f"{side}[{d['name']}].{k}", v) for k, v in (d.get(key) or {}).items()]
    return out


def check_against_spec(event: dict) -> None:
    """The event against the spec (root schema and its own schemaURL), each facet against its _schemaURL."""
    validator(SPEC).validate(event)
    validator(event["schemaURL"]).validate(event)
    for where, facet in facets_of(event):
        assert facet["_schemaURL"].split("#")[0] in {str(u) for u in REGISTRY}, f"{where}: unknown schema"
        try:
            validator(facet["_schemaURL"]).validate(facet)
        except ValidationError as e:
            raise AssertionError(f"{where}: {e.message}") from e


def normal(v):
    """Without nulls, empty facet maps and empty nested schema fields (the client writes `"facets": {}` and
    `"fields": []` where Consentry leaves the key out)."""
    if isinstance(v, dict):
        return {
            k: normal(x)
            for k, x in v.items()
            if x is not None
            and not (k in ("facets", "inputFacets", "outputFacets") and x == {})
            and not (k == "fields" and x == [])
        }
    if isinstance(v, list):
        return [normal(x) for x in v]
    return v


def check_with_client(event: dict) -> None:
    """Rebuilds the event with openlineage-python's classes and serialises it back."""
    from openlineage.client import event_v2 as ev
    from openlineage.client.generated import (
        base,
        dataset_type_dataset,
        dataset_version_dataset,
        error_message_run,
        input_statistics_input_dataset,
        job_type_job,
        output_statistics_output_dataset,
        processing_engine_run,
        schema_dataset,
    )
    from openlineage.client.serde import Serde

    standard = {
        "schema": schema_dataset.SchemaDatasetFacet,
        "version": dataset_version_dataset.DatasetVersionDatasetFacet,
        "datasetType": dataset_type_dataset.DatasetTypeDatasetFacet,
        "outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet,
        "inputStatistics": input_statistics_input_dataset.InputStatisticsInputDatasetFacet,
        "errorMessage": error_message_run.ErrorMessageRunFacet,
        "processing_engine": processing_engine_run.ProcessingEngineRunFacet,
        "jobType": job_type_job.JobTypeJobFacet,
    }

    def schema_fields(fields):
        return [
            schema_dataset.SchemaDatasetFacetFields(
                **{k: v for k, v in f.items() if k != "fields"}, fields=schema_fields(f.get("fields") or [])
            )
            for f in fields
        ]

    def facet(key: str, f: dict, generic):
        fields = {k: v for k, v in f.items() if not k.startswith("_")}
        cls = standard.get(key)
        if cls is None:  # Consentry's own facets: the client's base facet with additional properties
            assert key.startswith("consentry_"), f"facet {key} is neither standard nor Consentry's"
            obj = generic(producer=f["_producer"]).with_additional_properties(**fields)
            obj._schemaURL = f["_schemaURL"]
            return obj
        if key == "schema":
            fields["fields"] = schema_fields(fields.get("fields") or [])
        obj = cls(**fields, producer=f["_producer"])
        assert obj._schemaURL == f["_schemaURL"], f"{key}: the client says {obj._schemaURL}"
        return obj

    def facets(d: dict | None, generic):
        return {k: facet(k, v, generic) for k, v in (d or {}).items()}

    def datasets(items, cls, io_key, io_generic):
        return [
            cls(
                namespace=d["namespace"],
                name=d["name"],
                facets=facets(d.get("facets"), base.DatasetFacet),
                **{io_key: facets(d.get(io_key), io_generic)},
            )
            for d in items
        ]

    obj = ev.RunEvent(
        eventType=ev.RunState(event["eventType"]),
        eventTime=event["eventTime"],
        producer=event["producer"],
        run=ev.Run(runId=event["run"]["runId"], facets=facets(event["run"].get("facets"), base.RunFacet)),
        job=ev.Job(
            namespace=event["job"]["namespace"],
            name=event["job"]["name"],
            facets=facets(event["job"].get("facets"), base.JobFacet),
        ),
        inputs=datasets(event.get("inputs") or [], ev.InputDataset, "inputFacets", base.InputDatasetFacet),
        outputs=datasets(event.get("outputs") or [], ev.OutputDataset, "outputFacets", base.OutputDatasetFacet),
    )
    assert obj.schemaURL == event["schemaURL"]
    back = json.loads(Serde.to_json(obj))
    assert normal(back) == normal(event), "the client's serialisation differs from the event"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A demo data directory, then gate, train, withdrawals, unlearn and a refused gate, every event in one file."""
    if not BIN.is_file():
        pytest.fail(f"{BIN} is missing: build it first (cargo build -p consentry) or set CONSENTRY_BIN")
    tmp = tmp_path_factory.mktemp("openlineage")
    data = tmp / "data"
    events = tmp / "events.jsonl"
    consentry(data, "demo", "--members", "800", "--seed", "3")
    dataset, model = tmp / "dataset", tmp / "model"
    # The three ways to configure it: the variable, the flag, the OpenLineage clients' variables.
    consentry(data, "gate", "--purpose", JOBS, "--out", str(dataset), env={"CONSENTRY_OPENLINEAGE": events.as_uri()})
    consentry(data, "train", "--model", "job-recs", "--dataset", str(dataset), "--out", str(model), "--openlineage", str(events))
    for member in range(1, 21):
        consentry(data, "ledger", "append", "--member", str(member), "--purpose", JOBS, "--action", "withdraw", "--source", "ui")
    consentry(
        data,
        "unlearn",
        env={"OPENLINEAGE__TRANSPORT__TYPE": "file", "OPENLINEAGE__TRANSPORT__LOG_FILE_PATH": str(events)},
    )
    refused = consentry(data, "gate", "--purpose", JOBS, "--out", str(dataset), "--openlineage", str(events), ok=False)
    assert refused.returncode != 0
    lines = events.read_text().splitlines()
    return {"events": [json.loads(line) for line in lines], "lines": lines, "dataset": dataset, "model": model}


def test_the_vendored_schemas_are_valid_draft_2020_12():
    for path in sorted(SCHEMAS.rglob("*.json")):
        Draft202012Validator.check_schema(json.loads(path.read_text()))


def test_every_event_validates_against_the_openlineage_spec(runs):
    assert len(runs["events"]) == 8, [(e["eventType"], e["job"]["name"]) for e in runs["events"]]
    for e in runs["events"]:
        check_against_spec(e)


def test_every_event_is_accepted_by_the_openlineage_client(runs):
    for e in runs["events"]:
        check_with_client(e)


def test_each_run_starts_once_and_ends_once(runs):
    by_run: dict[str, list[str]] = {}
    for e in runs["events"]:
        by_run.setdefault(e["run"]["runId"], []).append(e["eventType"])
    assert len(by_run) == 4
    assert sorted(tuple(v) for v in by_run.values()) == sorted(
        [("START", "COMPLETE")] * 3 + [("START", "FAIL")]
    )
    kinds = [(e["job"]["name"], e["eventType"]) for e in runs["events"] if e["eventType"] != "START"]
    assert kinds == [
        (f"gate.{JOBS}", "COMPLETE"),
        ("train.job-recs", "COMPLETE"),
        ("unlearn", "COMPLETE"),
        (f"gate.{JOBS}", "FAIL"),
    ]
    fail = runs["events"][-1]
    assert "already exists" in fail["run"]["facets"]["errorMessage"]["message"]


def test_the_lineage_graph_joins_gate_train_and_unlearn(runs):
    ev = runs["events"]
    gate, train, unlearn = ev[1], ev[3], ev[5]
    dataset_name = str(runs["dataset"].resolve())
    assert gate["outputs"][0]["name"] == dataset_name == train["inputs"][0]["name"]
    model_name = str(runs["model"].resolve())
    assert train["outputs"][0]["name"] == model_name
    assert model_name in [i["name"] for i in unlearn["inputs"]], "the withdrawals reached the trained model"
    retrained = [o for o in unlearn["outputs"] if o["facets"]["consentry_unlearning"]["previous_model"]]
    assert retrained and all(o["facets"]["datasetType"]["datasetType"] == "MODEL" for o in retrained)
    assert unlearn["run"]["facets"]["consentry_unlearning_pass"]["withdrawals"] == 20


def test_the_manifest_facet_is_the_manifest(runs):
    m = json.loads((runs["dataset"] / "manifest.json").read_text())
    f = runs["events"][1]["outputs"][0]["facets"]["consentry_manifest"]
    assert f["purpose"] == m["purpose"]
    assert f["policy"] == m["policy"]
    assert f["ledger"]["position"] == m["ledger"]["position"]
    assert f["ledger"]["tree_root"] == m["ledger"]["tree_root"]
    assert f["snapshot"] == m["snapshot"]
    assert f["members"] == {"count": m["members"]["count"], "commitment": m["members"]["commitment"]}
    included = {k: t for k, t in m["tables"].items() if t["included"]}
    assert f["tables"] == {
        k: {"rows_in": t["rows_in"], "rows_out": t["rows_out"], "row_commitment": t["row_commitment"]}
        for k, t in included.items()
    }
    assert f["rows_out"] == m["rows_out"]


def test_every_line_is_one_whole_event(runs):
    for line in runs["lines"]:
        assert line.startswith('{"') and line.endswith("}") and "\n" not in line


def test_the_checks_catch_a_broken_event(runs):
    """The validation above can fail: a bad run id, a facet without _producer, an unknown event type."""
    good = runs["events"][1]
    bad_id = json.loads(json.dumps(good))
    bad_id["run"]["runId"] = "not-a-uuid"
    with pytest.raises(ValidationError):
        validator(SPEC).validate(bad_id)
    no_producer = json.loads(json.dumps(good))
    del no_producer["outputs"][0]["facets"]["consentry_manifest"]["_producer"]
    with pytest.raises((ValidationError, AssertionError)):
        check_against_spec(no_producer)
    bad_commitment = json.loads(json.dumps(good))
    bad_commitment["outputs"][0]["facets"]["consentry_manifest"]["members"]["commitment"] = "xyz"
    with pytest.raises(AssertionError):
        check_against_spec(bad_commitment)
    bad_type = json.loads(json.dumps(good))
    bad_type["eventType"] = "DONE"
    with pytest.raises(ValidationError):
        validator(SPEC).validate(bad_type)
    bad_time = {**good, "eventTime": "yesterday"}
    with pytest.raises(ValidationError):  # needs rfc3339-validator: without it, date-time goes unchecked
        validator(SPEC).validate(bad_time)
    with pytest.raises(ValueError):
        check_with_client(bad_time)
    # A field the standard facet does not have: the schema allows extra properties, the client's class does not.
    extra = json.loads(json.dumps(good))
    extra["outputs"][0]["outputFacets"]["outputStatistics"]["rows"] = 1
    check_against_spec(extra)
    with pytest.raises(TypeError):
        check_with_client(extra)


def test_an_https_target_is_refused_before_any_work(tmp_path):
    data = tmp_path / "empty"
    p = consentry(data, "gate", "--purpose", JOBS, "--out", str(tmp_path / "x"), "--openlineage", "https://collector/api/v1/lineage", ok=False)
    assert p.returncode != 0
    assert "collector or proxy" in p.stderr
    assert not (tmp_path / "x").exists()


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(pytest.main([__file__, "-q"]))
