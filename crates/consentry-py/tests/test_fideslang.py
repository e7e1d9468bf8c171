"""`consentry policy export --format fideslang` checked by the real fideslang package (pydantic models and its
default taxonomy), edited as a Fides user would, and brought back with `consentry policy import --from fideslang`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import fideslang
import yaml
from conftest import REPO, cli, cli_json
from fideslang.default_taxonomy import DEFAULT_TAXONOMY
from fideslang.models import DataCategory, PrivacyDeclaration, System, Taxonomy

DEFAULT_POLICY = REPO / "policy" / "default.toml"
RUST_TABLE = REPO / "crates" / "consentry-policy" / "src" / "fideslang_taxonomy.rs"


def export(data: Path) -> str:
    return cli(data, "policy", "export", "--format", "fideslang", str(DEFAULT_POLICY)).stdout


def keys(resources) -> set[str]:
    return {r.fides_key for r in resources}


def test_consentrys_copy_of_the_default_taxonomy_is_fideslangs():
    text = RUST_TABLE.read_text()
    version = re.search(r'pub const VERSION: &str = "([^"]+)"', text).group(1)
    assert fideslang.__version__.startswith(version), (fideslang.__version__, version)

    def table(name: str) -> set[str]:
        body = re.search(rf"pub const {name}: [^=]+= &\[(.*?)\n\];", text, re.S).group(1)
        # (key, description) tuples, however rustfmt wraps them; the subjects are bare strings, one a line.
        tuples = re.findall(r'\(\s*"([^"]+)",', body)
        return set(tuples) if tuples else set(re.findall(r'^\s+"([^"]+)",$', body, re.M))

    assert table("DATA_CATEGORIES") == keys(DEFAULT_TAXONOMY.data_category)
    assert table("DATA_USES") == keys(DEFAULT_TAXONOMY.data_use)
    assert table("DATA_SUBJECTS") == keys(DEFAULT_TAXONOMY.data_subject)


def test_the_export_is_a_valid_fides_manifest(tmp_path: Path):
    text = export(tmp_path / "data")
    manifest = json.loads(text)
    # JSON is YAML: what `fides push` reads (yaml.safe_load) is the same manifest.
    assert yaml.safe_load(text) == manifest
    taxonomy = Taxonomy(**manifest)
    assert len(taxonomy.system) == 1
    system = System.model_validate(manifest["system"][0])
    assert system.system_type == "Service"
    assert system.organization_fides_key == "default_organization"

    uses = keys(DEFAULT_TAXONOMY.data_use) | keys(taxonomy.data_use)
    categories = keys(DEFAULT_TAXONOMY.data_category) | keys(taxonomy.data_category)
    subjects = keys(DEFAULT_TAXONOMY.data_subject)
    # Extensions add only what the default taxonomy lacks, and hang from something that exists.
    assert not keys(taxonomy.data_use) & keys(DEFAULT_TAXONOMY.data_use)
    assert not keys(taxonomy.data_category) & keys(DEFAULT_TAXONOMY.data_category)
    for ext in [*taxonomy.data_use, *taxonomy.data_category]:
        assert ext.parent_key in (uses | categories), ext.fides_key
        assert ext.description, ext.fides_key

    purposes = {d.data_use: d for d in system.privacy_declarations}
    assert set(purposes) == {
        "train_ai_system.job_recommendations",
        "train_ai_system.content_suggestions",
        "train_ai_system.reply_suggestions",
    }
    for d in system.privacy_declarations:
        assert d.data_use in uses and d.data_use.startswith("train_ai_system.")
        assert set(d.data_categories) <= categories, d.data_use
        assert set(d.data_subjects) <= subjects and d.data_subjects == ["customer"]
        assert d.legal_basis_for_processing.value == "Consent"
    assert purposes["train_ai_system.reply_suggestions"].data_categories == ["user.content.private"]
    # What Fides has no field for rides in meta, where Fides keeps free data.
    meta = system.meta["consentry"]
    assert [n["version"] for n in meta["purposes"]["train_ai_system.reply_suggestions"]["notices"]] == [1, 2]
    assert meta["categories"]["user.content.private"]["sensitive"] is True
    assert meta["jurisdictions"]["EEA"] == {"default": "opt_in", "min_age": 18}


def test_an_untouched_manifest_comes_back_as_the_same_policy(tmp_path: Path):
    data = tmp_path / "data"
    manifest = tmp_path / "consentry.yml"
    cli(data, "policy", "export", "--format", "fideslang", str(DEFAULT_POLICY), "--out", str(manifest))
    out = tmp_path / "back.toml"
    cli(data, "policy", "import", "--from", "fideslang", str(manifest), "--out", str(out))
    assert out.read_bytes() == DEFAULT_POLICY.read_bytes()


def test_a_fides_users_edit_arrives_and_passes_the_check(tmp_path: Path):
    data = tmp_path / "data"
    manifest = json.loads(export(data))
    taxonomy = Taxonomy(**manifest)
    # As a Fides user would: a new category of the organisation's own, and a default one, on one declaration.
    taxonomy.data_category.append(
        DataCategory(
            fides_key="user.professional.certifications",
            parent_key="user.professional",
            name="Certifications",
            description="Certifications a member lists on their profile.",
        )
    )
    for d in taxonomy.system[0].privacy_declarations:
        if d.data_use == "train_ai_system.job_recommendations":
            d.data_categories += ["user.professional.certifications", "user.workplace"]
    # And a declaration Consentry does not govern.
    taxonomy.system[0].privacy_declarations.append(
        type(taxonomy.system[0].privacy_declarations[0])(
            name="Analytics", data_use="analytics.reporting", data_categories=["user.behavior"]
        )
    )
    edited = tmp_path / "edited.json"
    edited.write_text(taxonomy.model_dump_json(exclude_none=True))

    out = tmp_path / "new.toml"
    r = cli_json(data, "policy", "import", "--from", "fideslang", str(edited), "--out", str(out))
    assert not r["unchanged"]
    assert any("analytics.reporting" in n for n in r["notes"])  # skipped, with a note
    cli(data, "policy", "check", str(out))
    shown = json.loads(cli(data, "--json", "policy", "show", str(out)).stdout)
    job = next(p for p in shown["purposes"] if p["key"] == "train_ai_system.job_recommendations")
    assert job["categories"][-2:] == ["user.professional.certifications", "user.workplace"]
    cats = {c["key"]: c for c in shown["categories"]}
    assert cats["user.professional.certifications"]["description"] == "Certifications a member lists on their profile."
    # New to Consentry: taken as sensitive until the operator says otherwise.
    assert cats["user.workplace"]["sensitive"] is True
    # Everything Fides does not carry came back from the export.
    reply = next(p for p in shown["purposes"] if p["key"] == "train_ai_system.reply_suggestions")
    assert [n["version"] for n in reply["notices"]] == [1, 2]
    assert cats["user.content.private"]["sensitive"] is True
    assert {g[0] for g in shown["groups"]} == {"EEA"}


def test_yaml_is_refused_with_the_way_to_convert_it(tmp_path: Path):
    data = tmp_path / "data"
    manifest = yaml.safe_dump(json.loads(export(data)))
    path = tmp_path / "consentry.yml"
    path.write_text(manifest)
    r = cli(data, "policy", "import", "--from", "fideslang", str(path), "--out", str(tmp_path / "x.toml"), check=False)
    assert r.returncode == 2, r.stderr
    assert "yq -o json" in r.stderr and ":1:" in r.stderr
    assert not (tmp_path / "x.toml").exists()
