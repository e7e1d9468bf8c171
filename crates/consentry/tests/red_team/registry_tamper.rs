//! The registry itself: an insider with write access to the data directory and the database (no signing key)
//! plants pre-unlearning shard files in the live model and then rewrites the registry's rows (model id, shard
//! hashes, member bitmaps) to match, or forges a dataset registration; every registration is signed with the
//! ledger's key, so serving, training and the audit (online and offline) refuse what the key did not sign.

use crate::common::{consentry, ok, read_bitmap};
use crate::{
    PreUnlearning, audit, audit_finds, b3, fresh, ledger_db, plant_shard, pre_unlearning, read_json, refused,
    train_unregistered, withdrawn_member,
};
use consentry_app::DataDir;

/// Renames model `old` to `new` everywhere the registry mentions it.
fn rename_model(c: &rusqlite::Connection, old: &str, new: &str) {
    for (table, col) in [
        ("registry_models", "id"),
        ("registry_models", "supersedes"),
        ("registry_shards", "model_id"),
        ("registry_runs", "model_id"),
        ("registry_model_events", "model_id"),
        ("registry_unlearning", "old_model"),
        ("registry_unlearning", "new_model"),
    ] {
        c.execute(&format!("UPDATE {table} SET {col} = ?1 WHERE {col} = ?2"), [new, old]).unwrap();
    }
}

#[test]
fn pre_unlearning_shards_planted_and_registry_rows_rewritten_to_match_are_refused_and_audited() {
    let (dir, data) = fresh();
    let PreUnlearning { victim, v2, old, shard: i } = pre_unlearning(dir.path(), &data);

    // Plant the old shard in the live version and fix model.json's hashes.
    let registered_id = b3(&std::fs::read(v2.join("model.json")).unwrap());
    let meta_bytes = plant_shard(&old, &v2, i);
    let members = format!("shard-{i:03}.members.roaring");
    let weights = std::fs::read(v2.join(format!("shard-{i:03}.safetensors"))).unwrap();
    let bits = std::fs::read(v2.join(&members)).unwrap();

    // Then make the registry agree with the files: the model's id, the shard's hash and member bitmap.
    let forged_id = b3(&meta_bytes);
    let c = ledger_db(&data);
    rename_model(&c, &registered_id, &forged_id);
    c.execute(
        "UPDATE registry_shards SET file_blake3 = ?1, members_bitmap = ?2, members = ?3 WHERE model_id = ?4 AND idx = ?5",
        rusqlite::params![b3(&weights), bits, read_bitmap(&old.join(&members)).len() as i64, forged_id, i as i64],
    )
    .unwrap();
    drop(c);

    // Serving refuses, naming the model and the signature.
    let m = victim.to_string();
    let o = consentry(&data, &["recommend", "--model", v2.to_str().unwrap(), "--member", m.as_str()]);
    refused(&o, "signing key");
    refused(&o, &forged_id);
    // The online audit fails, naming the unsigned record.
    let report = audit_finds(&data, "registry_signature", "signing key");
    assert!(report.to_string().contains("job-recs.v2"), "{report}");
    // The offline audit of an exported bundle too, with only the public key.
    let bundle = dir.path().join("bundle");
    ok(&consentry(&data, &["--quiet", "audit", "export", "--out", bundle.to_str().unwrap()]));
    let public = DataDir::new(&data).public_key_file();
    let (code, report) =
        audit(&data, &["--offline", bundle.to_str().unwrap(), "--public-key", public.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{report}");
    assert!(report.to_string().contains("registry_signature"), "{report}");

    // Nor does the unlearning worker launder the forged version into a signed successor on the next withdrawal.
    let other = read_bitmap(&v2.join(&members)).iter().find(|m| *m != victim).unwrap();
    ok(&consentry(&data, &crate::common::withdrawal(&other.to_string(), crate::JOBS, "ui")));
    let o = consentry(&data, &["unlearn"]);
    refused(&o, "signing key");
    let listed = ok(&consentry(&data, &["--json", "lineage", "models"]));
    assert!(!listed.contains("job-recs.v3"), "no successor was registered: {listed}");
}

#[test]
fn superseded_version_revived_in_the_registry_is_refused_and_audited() {
    let (dir, data) = fresh();
    let v1 = DataDir::new(&data).models_dir().join("job-recs");
    let v2 = DataDir::new(&data).models_dir().join("job-recs.v2");
    let victim = withdrawn_member(&data);
    let v1_id = b3(&std::fs::read(v1.join("model.json")).unwrap());
    let v2_id = b3(&std::fs::read(v2.join("model.json")).unwrap());
    // The attacker kept v1's weights (the same training again reproduces them) and restores them.
    let old = dir.path().join("old");
    train_unregistered(&data, &old);
    let meta = read_json(&v1.join("model.json"));
    for s in meta["shards"].as_array().unwrap() {
        let f = s["file"].as_str().unwrap();
        if !v1.join(f).exists() {
            std::fs::copy(old.join(f), v1.join(f)).unwrap();
        }
    }
    // Status is mutable state: the attacker flips v1 back to live and v2 to retired.
    let c = ledger_db(&data);
    c.execute("UPDATE registry_models SET status = 'live', status_changed = NULL WHERE id = ?1", [&v1_id]).unwrap();
    c.execute("UPDATE registry_models SET status = 'retired' WHERE id = ?1", [&v2_id]).unwrap();
    drop(c);
    let m = victim.to_string();
    let o = consentry(&data, &["recommend", "--model", v1.to_str().unwrap(), "--member", m.as_str()]);
    refused(&o, "status was altered");
    audit_finds(&data, "registry_signature", "status was altered");
}

#[test]
fn forged_dataset_registration_is_refused_by_training_and_audited() {
    let (dir, data) = fresh();
    let ds = DataDir::new(&data).datasets_dir().join("job_recommendations");
    let manifest_path = ds.join("manifest.json");
    let old_id = b3(&std::fs::read(&manifest_path).unwrap());
    // A member the gate left out added to the dataset's member bitmap, the manifest's commitment and count "fixed".
    let mut manifest = read_json(&manifest_path);
    let file = manifest["members"]["file"].as_str().unwrap().to_string();
    let mut members = read_bitmap(&ds.join(&file));
    let outsider = (1..).find(|m| !members.contains(*m)).unwrap();
    members.insert(outsider);
    let mut bits = Vec::new();
    members.serialize_into(&mut bits).unwrap();
    std::fs::write(ds.join(&file), &bits).unwrap();
    manifest["members"]["commitment"] = b3(&bits).into();
    manifest["members"]["count"] = members.len().into();
    let manifest_bytes = serde_json::to_vec_pretty(&manifest).unwrap();
    std::fs::write(&manifest_path, &manifest_bytes).unwrap();
    // And the registry rewritten to hold the new manifest as the registered one.
    let new_id = b3(&manifest_bytes);
    let c = ledger_db(&data);
    c.execute(
        "UPDATE registry_datasets SET id = ?1, members = ?2, members_commitment = ?3, members_bitmap = ?4, \
         manifest_json = ?5 WHERE id = ?6",
        rusqlite::params![
            new_id,
            members.len() as i64,
            b3(&bits),
            bits,
            String::from_utf8(manifest_bytes.clone()).unwrap(),
            old_id
        ],
    )
    .unwrap();
    c.execute("UPDATE registry_models SET dataset_id = ?1 WHERE dataset_id = ?2", [&new_id, &old_id]).unwrap();
    drop(c);

    let out = dir.path().join("forged-model");
    let o = consentry(
        &data,
        &["train", "--model", "job-recs", "--dataset", ds.to_str().unwrap(), "--out", out.to_str().unwrap()],
    );
    refused(&o, "signing key");
    refused(&o, &new_id);
    assert!(!out.exists(), "no model directory is left behind");
    // The audit names the unsigned dataset record.
    audit_finds(&data, "registry_signature", &new_id);
}
