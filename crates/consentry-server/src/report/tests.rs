use super::*;
use consentry_app::dashboard::{CoverageSeries, DatasetOverview, SeriesPoint, summarise_unlearning};
use consentry_app::operator::CoverageCell;
use consentry_app::report::*;
use std::collections::BTreeMap;

const T0: i64 = 1_790_000_000;
const HOSTILE: &str = "</script><img src=x>";

fn figure(metric: &str, value: f64) -> Figure {
    Figure {
        metric: metric.into(),
        label: metric.into(),
        value: Some(value),
        lo: Some(value - 0.01),
        hi: Some(value + 0.01),
    }
}

/// A report with every section filled, purpose and jurisdiction names taken from `name`.
fn sample(name: &str) -> Report {
    let points: Vec<SeriesPoint> = (0..4)
        .map(|i| SeriesPoint { at: T0 + i * 86_400, members: 100, allowed: 10 * i as u64, share: 0.1 * i as f64 })
        .collect();
    let quality = |id: &str, eps: Option<f64>, v: f64, files: ManifestState| ModelQuality {
        id: id.into(),
        kind: "job-recs".into(),
        purpose: name.into(),
        version: 1,
        status: "live".into(),
        trained: T0,
        files,
        files_problem: (files == ManifestState::Altered).then(|| format!("edited {name}")),
        dp_epsilon: eps,
        headline: "recall_at_20".into(),
        rows: vec![QualityRow { row: "model".into(), label: "model".into(), figures: vec![figure("recall_at_20", v)] }],
        oracle_note: Some("no oracle".into()),
    };
    let models = vec![
        quality("a".repeat(64).as_str(), None, 0.3, ManifestState::Verified),
        quality("b".repeat(64).as_str(), Some(1.0), 0.2, ManifestState::Altered),
    ];
    let point = |m: &ModelQuality| DpPoint {
        model: m.id.clone(),
        kind: m.kind.clone(),
        epsilon: m.dp_epsilon,
        figure: m.rows[0].figures[0].clone(),
        verified: m.files == ManifestState::Verified,
    };
    Report {
        generated: Generated {
            at: T0 + 4 * 86_400,
            data_dir: format!("/tmp/{name}"),
            consentry_version: "0.1.0".into(),
            policy_version: "2026-01".into(),
            policy_hash: "c".repeat(64),
            backend: "sqlite".into(),
        },
        summary: Summary {
            members: 100,
            allowed: vec![PurposeAllowed {
                purpose: name.into(),
                name: name.into(),
                members: 100,
                allowed: 30,
                share: 0.3,
            }],
            live_models: 2,
            model_versions: 2,
            datasets: 1,
            withdrawals: 0,
            honoured_on_time: 0,
            honoured_late: 0,
            open: 0,
            audit_passed: Some(true),
            unverified_models: 1,
        },
        coverage: Coverage {
            method: "method".into(),
            position: 10,
            span: Some((T0, T0 + 3 * 86_400)),
            instants: points.iter().map(|p| p.at).collect(),
            by_purpose: vec![CoverageSeries { purpose: name.into(), name: name.into(), points: points.clone() }],
            by_jurisdiction: vec![JurisdictionSeries { jurisdiction: name.into(), points: points.clone() }],
            latest: vec![CoverageCell {
                purpose: name.into(),
                jurisdiction: name.into(),
                members: 100,
                allowed: 30,
                share: 0.3,
            }],
            notices: vec![NoticeMarker {
                purpose: name.into(),
                name: name.into(),
                version: 2,
                effective: T0 + 86_400,
                material: true,
            }],
            gpc: points
                .iter()
                .map(|p| GpcPoint { at: p.at, denied: BTreeMap::from([(name.to_string(), 3)]) })
                .collect(),
            gpc_withdrawals: 3,
            gpc_purposes: vec![name.into()],
        },
        exclusions: vec![DatasetOverview {
            id: "d".repeat(64),
            purpose: name.into(),
            dir: "gated/x".into(),
            created: T0,
            ledger_position: 10,
            ledger_at: T0,
            members: 30,
            manifest: consentry_app::dashboard::ManifestState::Verified,
            manifest_problem: None,
            rows_in: Some(100),
            rows_out: Some(60),
            rows_excluded: Some(40),
            excluded_by_reason: BTreeMap::from([(name.to_string(), 40)]),
        }],
        dp: DpCurve { points: vec![point(&models[1])], references: vec![point(&models[0])], how_to: None },
        models,
        privacy_loss: PrivacyLossDistribution {
            members: 30,
            bounded: 20,
            only_unbounded: 10,
            also_unbounded: 5,
            bins: vec![LossBin { lo: 0.0, hi: Some(1.0), members: 20 }, LossBin { lo: 1.0, hi: None, members: 0 }],
            groups: Vec::new(),
            lines: vec![LossLineInfo {
                line: "b".repeat(64),
                kind: "job-recs".into(),
                purpose: name.into(),
                epsilon: Some(1.0),
                delta: Some(1e-6),
                members: 20,
            }],
            method: "composed".into(),
        },
        unlearning: Unlearning { requests: Vec::new(), summary: summarise_unlearning(&[], &[], T0, 86_400) },
        audit: Some(AuditResult {
            ok: true,
            violations: 0,
            now: T0,
            deadline_seconds: 60,
            ledger_entries: 10,
            checkpoints: 1,
            consistency_proofs: 0,
            members: 100,
            datasets: 1,
            models: 2,
            by_kind: Vec::new(),
            notes: vec![name.into()],
        }),
        verify: Some(Verification {
            tree_size: 10,
            root: "e".repeat(64),
            log_id: "f".repeat(64),
            key_id: "f".repeat(64),
            signed_at: T0,
            public_key: "0".repeat(64),
            fingerprint: "f".repeat(16),
            public_key_file: format!("/tmp/{name}/ledger.pub"),
            steps: vec![VerifyStep {
                what: "verify".into(),
                command: format!("consentry --data '{name}' ledger verify"),
            }],
        }),
    }
}

#[test]
fn hostile_purpose_names_and_jurisdictions_are_escaped_everywhere() {
    let html = render(&sample(HOSTILE));
    assert!(!html.contains("<img"), "an <img> element got through");
    assert!(!html.contains("</script>"), "a closing script tag got through");
    assert!(html.contains("&lt;/script&gt;&lt;img src=x&gt;"), "the name is shown, escaped");
}

#[test]
fn the_page_is_self_contained_and_has_every_section() {
    let html = render(&sample("Job recommendations"));
    for id in ["summary", "coverage", "exclusions", "models", "dp", "privacy-loss", "unlearning", "audit", "verify"] {
        assert!(html.contains(&format!(r#"<section id="{id}""#)), "section {id} missing");
    }
    assert!(!html.contains("http://") && !html.contains("https://"), "a URL in the page");
    assert!(!html.contains("<script") && !html.contains("@import"));
    for (i, _) in html.match_indices("url(") {
        assert!(html[i..].starts_with("url(#"), "an external url(: {}", &html[i..i + 30]);
    }
    // Every chart is followed by a table before the next chart.
    let mut rest = html.as_str();
    while let Some(i) = rest.find("</svg>") {
        rest = &rest[i + 6..];
        let table = rest.find("<table").expect("a table after the last chart");
        assert!(rest.find("<svg").is_none_or(|next| next > table), "a chart without its table");
    }
    assert!(html.contains("@media print"));
    assert!(html.contains("Unverified: edited"), "altered model files are flagged");
}

#[test]
fn the_same_report_renders_to_the_same_bytes() {
    assert_eq!(render(&sample("x")), render(&sample("x")));
}

#[test]
fn empty_sections_say_none_yet() {
    let mut r = sample("x");
    r.coverage.instants.clear();
    r.exclusions.clear();
    r.models.clear();
    r.dp = DpCurve { points: Vec::new(), references: Vec::new(), how_to: Some("train with --dp-epsilon 1".into()) };
    r.privacy_loss.members = 0;
    r.audit = None;
    r.verify = None;
    let html = render(&r);
    assert!(html.matches("None yet").count() >= 5, "{html}");
    assert!(html.contains("--dp-epsilon 1"));
    assert!(html.contains("--no-audit"));
}
