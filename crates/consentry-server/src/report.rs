//! The privacy officer's report as one self-contained HTML5 file: inline CSS, the charts of [`crate::charts`] inlined
//! as SVG, no script, no external reference of any kind (no URL, no font, no image), so it can be forwarded by mail
//! and opened anywhere, and printed. Every chart is followed by the table of its figures; every section has a stable
//! id (`summary`, `coverage`, `exclusions`, `models`, `dp`, `privacy-loss`, `unlearning`, `audit`, `verify`). All
//! text from files (purpose names, jurisdictions, messages, paths) is escaped. A pure function of the report: the
//! same report gives the same bytes.

use crate::charts::{
    self, EpsilonSeries, HistBin, LineSeries, StackedBar, TimeMarker, coverage_chart_marked, epsilon_chart, escape,
    exclusions_chart, histogram_chart,
};
use consentry_app::dashboard::{ManifestState, thousands};
use consentry_app::report::{Figure, Report};
use std::fmt::Write as _;

/// The most unlearning requests listed one by one (the summary counts them all).
pub const MAX_REQUEST_ROWS: usize = 200;

/// The page's stylesheet: readable at 360 px, tables scroll inside their box, a print block.
const CSS: &str = r#"
:root{color-scheme:light;--text:#1F1F1F;--muted:#595959;--line:#D9D9D9;--ok:#00704A;--bad:#B3261E;--bg:#FFFFFF}
*{box-sizing:border-box}
body{margin:0 auto;max-width:960px;padding:16px;font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--text);background:var(--bg)}
h1{font-size:1.6rem;margin:.2em 0}
p,li,h1,h2,h3,caption{overflow-wrap:anywhere}
h2{font-size:1.3rem;margin-top:2em;border-bottom:2px solid var(--line);padding-bottom:.2em}
h3{font-size:1.05rem;margin-top:1.4em}
p.meta,.note{color:var(--muted);font-size:.9rem}
.ok{color:var(--ok);font-weight:600}
.bad{color:var(--bad);font-weight:600}
.box{border:1px solid var(--line);border-radius:6px;padding:12px 16px;margin:12px 0}
.summary li{margin:.3em 0}
figure{margin:12px 0}
svg.cs-chart{width:100%;height:auto;max-width:640px;display:block}
.table-wrap{overflow-x:auto;margin:8px 0 16px}
.table-wrap:focus{outline:2px solid #0072B2;outline-offset:2px}
table{border-collapse:collapse;font-size:.9rem;min-width:50%}
caption{text-align:left;font-weight:600;padding:4px 0;caption-side:top}
th,td{border:1px solid var(--line);padding:4px 8px;vertical-align:top}
th[scope=col]{background:#F2F2F2;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
code,pre{font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,monospace;font-size:.85rem}
pre{white-space:pre-wrap;word-break:break-all;background:#F7F7F7;border:1px solid var(--line);padding:8px;border-radius:4px}
.hash{word-break:break-all}
@media (max-width:480px){body{padding:8px;font-size:15px}h1{font-size:1.3rem}th,td{padding:3px 4px}}
@media print{body{max-width:none;padding:0;font-size:11pt}h2{break-after:avoid}figure,table,.box{break-inside:avoid}.table-wrap{overflow:visible}pre{white-space:pre-wrap}}
"#;

/// `0.412` → `41.2 %`.
fn pct(share: f64) -> String {
    if share.is_finite() { format!("{:.1} %", share * 100.0) } else { "–".into() }
}

/// A time as `2026-12-03 14:05:09 UTC`.
fn when(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map_or_else(|| t.to_string(), |d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
}

/// A day as `2026-12-03`.
fn day(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).map_or_else(|| t.to_string(), |d| d.format("%Y-%m-%d").to_string())
}

/// A figure with its interval: `0.305 [0.284, 0.326]`.
fn fig(f: &Figure) -> String {
    match (f.value, f.lo, f.hi) {
        (Some(v), Some(lo), Some(hi)) => format!("{v:.3} [{lo:.3}, {hi:.3}]"),
        (Some(v), _, _) => format!("{v:.3}"),
        _ => "–".into(),
    }
}

/// The first 12 hex digits of an id.
fn short(id: &str) -> &str {
    consentry_app::dashboard::short(id)
}

/// A page being written.
struct Page {
    out: String,
}

impl Page {
    fn raw(&mut self, s: &str) {
        self.out.push_str(s);
    }

    /// Escaped text.
    fn text(&mut self, s: &str) {
        self.out.push_str(&escape(s));
    }

    /// A section with its id and heading.
    fn section(&mut self, id: &str, heading: &str) {
        let _ =
            write!(self.out, r#"<section id="{id}" aria-labelledby="{id}-h"><h2 id="{id}-h">{}</h2>"#, escape(heading));
    }

    fn end_section(&mut self) {
        self.raw("</section>\n");
    }

    /// A paragraph of escaped text.
    fn p(&mut self, class: &str, s: &str) {
        if class.is_empty() {
            let _ = write!(self.out, "<p>{}</p>", escape(s));
        } else {
            let _ = write!(self.out, r#"<p class="{class}">{}</p>"#, escape(s));
        }
    }

    /// An inline chart, without the SVG namespace attribute (HTML5 puts inline `<svg>` in it; the page then holds
    /// no URL at all).
    fn chart(&mut self, svg: &str) {
        let svg = svg.replacen(r#" xmlns="http://www.w3.org/2000/svg""#, "", 1);
        let _ = write!(self.out, "<figure>{}</figure>", svg.trim_end());
    }

    /// A table: caption, header cells (`scope="col"`), rows whose first cell is a row header; cells of `nums`
    /// columns are right-aligned. Everything escaped.
    fn table(&mut self, caption: &str, header: &[&str], rows: &[Vec<String>], nums: &[usize]) {
        // A region a keyboard can reach and scroll when the table is wider than the screen.
        let _ = write!(
            self.out,
            r#"<div class="table-wrap" role="region" tabindex="0" aria-label="{c}"><table><caption>{c}</caption><thead><tr>"#,
            c = escape(caption)
        );
        for h in header {
            let _ = write!(self.out, r#"<th scope="col">{}</th>"#, escape(h));
        }
        self.raw("</tr></thead><tbody>");
        for row in rows {
            self.raw("<tr>");
            for (i, cell) in row.iter().enumerate() {
                if i == 0 {
                    let _ = write!(self.out, r#"<th scope="row">{}</th>"#, escape(cell));
                } else if nums.contains(&i) {
                    let _ = write!(self.out, r#"<td class="num">{}</td>"#, escape(cell));
                } else {
                    let _ = write!(self.out, "<td>{}</td>", escape(cell));
                }
            }
            self.raw("</tr>");
        }
        self.raw("</tbody></table></div>");
    }
}

/// The report as one HTML5 document.
pub fn render(r: &Report) -> String {
    let mut p = Page { out: String::with_capacity(64 * 1024) };
    p.raw("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    p.raw(r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#);
    p.raw(r#"<meta name="generator" content="consentry report">"#);
    let _ = write!(p.out, "<title>Consentry privacy report — {}</title>", escape(&day(r.generated.at)));
    let _ = write!(p.out, "<style>{CSS}</style></head><body><main>");
    p.raw("<h1>Consent and AI training: privacy report</h1>");
    p.p(
        "meta",
        &format!(
            "Generated {} from the data directory {} by consentry {}, under policy version {} (BLAKE3 {}), ledger on {}.",
            when(r.generated.at),
            r.generated.data_dir,
            r.generated.consentry_version,
            r.generated.policy_version,
            r.generated.policy_hash,
            r.generated.backend
        ),
    );
    summary(&mut p, r);
    coverage(&mut p, r);
    exclusions(&mut p, r);
    models(&mut p, r);
    dp(&mut p, r);
    privacy_loss(&mut p, r);
    unlearning(&mut p, r);
    audit(&mut p, r);
    verify(&mut p, r);
    p.raw("</main></body></html>\n");
    p.out
}

fn summary(p: &mut Page, r: &Report) {
    let s = &r.summary;
    p.section("summary", "Summary");
    p.raw(r#"<div class="box summary"><ul>"#);
    let _ = write!(p.out, "<li>{} members are in the consent ledger.</li>", thousands(s.members));
    for a in &s.allowed {
        let _ = write!(
            p.out,
            "<li>{}: {} of them ({}) allow their data to train it.</li>",
            escape(&a.name),
            thousands(a.allowed),
            pct(a.share)
        );
    }
    let _ = write!(
        p.out,
        "<li>{} model version(s) serve now ({} registered in all), trained on {} consent-gated dataset(s).</li>",
        s.live_models, s.model_versions, s.datasets
    );
    let honoured = s.honoured_on_time + s.honoured_late;
    let _ = write!(
        p.out,
        "<li>{} withdrawal(s) reached a trained model: {} removed within the deadline, {} removed late, {} still open.</li>",
        thousands(s.withdrawals),
        thousands(s.honoured_on_time),
        thousands(s.honoured_late),
        thousands(s.open)
    );
    let _ = honoured;
    match s.audit_passed {
        Some(true) => p.raw(r#"<li>The audit <span class="ok">passed</span>: no violation found.</li>"#),
        Some(false) => p.raw(r#"<li>The audit <span class="bad">failed</span>: see the audit section.</li>"#),
        None => p.raw("<li>The audit was not run for this report (<code>--no-audit</code>).</li>"),
    }
    if s.unverified_models > 0 {
        let _ = write!(
            p.out,
            r#"<li><span class="bad">{} model version(s) have files that differ from the registry</span>; their figures are marked unverified.</li>"#,
            s.unverified_models
        );
    }
    p.raw("</ul></div>");
    p.end_section();
}

fn coverage(p: &mut Page, r: &Report) {
    let c = &r.coverage;
    p.section("coverage", "Consent coverage");
    p.p("note", &c.method);
    if c.instants.is_empty() {
        p.p("", "None yet: the ledger holds no consent event.");
        p.end_section();
        return;
    }
    let markers: Vec<TimeMarker> = c
        .notices
        .iter()
        .map(|n| TimeMarker {
            at: n.effective,
            label: format!("{} notice v{}{}", n.name, n.version, if n.material { ", material" } else { "" }),
            strong: n.material,
        })
        .collect();
    let series: Vec<LineSeries> = c
        .by_purpose
        .iter()
        .map(|s| LineSeries { name: s.name.clone(), points: s.points.iter().map(|q| (q.at, q.share)).collect() })
        .collect();
    p.raw("<h3>By purpose</h3>");
    p.chart(&coverage_chart_marked(
        "cs-coverage",
        "coverage",
        "Consent coverage over time, by purpose",
        &series,
        "all jurisdictions",
        &markers,
    ));
    let mut header = vec!["instant".to_string()];
    header.extend(c.by_purpose.iter().map(|s| format!("{} allowed", s.name)));
    header.extend(c.by_purpose.iter().map(|s| format!("{} denied by GPC", s.name)));
    let rows: Vec<Vec<String>> = c
        .instants
        .iter()
        .enumerate()
        .map(|(i, &at)| {
            let mut row = vec![when(at)];
            for s in &c.by_purpose {
                row.push(s.points.iter().find(|q| q.at == at).map_or("–".into(), |q| {
                    format!("{} of {} ({})", thousands(q.allowed), thousands(q.members), pct(q.share))
                }));
            }
            for s in &c.by_purpose {
                row.push(c.gpc.get(i).and_then(|g| g.denied.get(&s.purpose)).map_or("–".into(), |n| thousands(*n)));
            }
            row
        })
        .collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let nums: Vec<usize> = (1..header.len()).collect();
    p.table(
        "Members allowed per purpose, and members denied by Global Privacy Control, at each instant",
        &header,
        &rows,
        &nums,
    );
    let gpc_names: Vec<&str> = c
        .gpc_purposes
        .iter()
        .map(|k| c.by_purpose.iter().find(|s| &s.purpose == k).map_or(k.as_str(), |s| s.name.as_str()))
        .collect();
    p.p(
        "note",
        &format!(
            "Global Privacy Control: {} withdrawal(s) in the log came from a GPC signal; purposes a GPC signal withdraws: {}.",
            thousands(c.gpc_withdrawals),
            if gpc_names.is_empty() { "none".to_string() } else { gpc_names.join(", ") }
        ),
    );
    let notice_rows: Vec<Vec<String>> = c
        .notices
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let inside = c.span.is_some_and(|(a, b)| n.effective >= a && n.effective <= b);
            vec![
                format!("{} v{}", n.name, n.version),
                when(n.effective),
                if n.material { "yes: earlier grants lapse".into() } else { "no".into() },
                if inside {
                    format!(
                        "marker {}",
                        1 + c.notices[..i]
                            .iter()
                            .filter(|m| c.span.is_some_and(|(a, b)| m.effective >= a && m.effective <= b))
                            .count()
                    )
                } else {
                    "outside the chart's range".into()
                },
            ]
        })
        .collect();
    p.table(
        "Notice versions (markers on the chart's time axis)",
        &["notice", "effective", "material", "on the chart"],
        &notice_rows,
        &[],
    );

    p.raw("<h3>By jurisdiction</h3>");
    let jseries: Vec<LineSeries> = c
        .by_jurisdiction
        .iter()
        .map(|s| LineSeries {
            name: s.jurisdiction.clone(),
            points: s.points.iter().map(|q| (q.at, q.share)).collect(),
        })
        .collect();
    p.chart(&coverage_chart_marked(
        "cs-jcoverage",
        "jcoverage",
        "Consent coverage over time, by jurisdiction (allowed member–purpose pairs)",
        &jseries,
        "all purposes",
        &[],
    ));
    let rows: Vec<Vec<String>> = c
        .instants
        .iter()
        .map(|&at| {
            let mut row = vec![when(at)];
            for s in &c.by_jurisdiction {
                row.push(s.points.iter().find(|q| q.at == at).map_or("–".into(), |q| {
                    format!("{} of {} ({})", thousands(q.allowed), thousands(q.members), pct(q.share))
                }));
            }
            row
        })
        .collect();
    let mut header = vec!["instant".to_string()];
    header.extend(c.by_jurisdiction.iter().map(|s| s.jurisdiction.clone()));
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let nums: Vec<usize> = (1..header.len()).collect();
    p.table("Allowed member–purpose pairs per jurisdiction rule, at each instant", &header, &rows, &nums);
    let rows: Vec<Vec<String>> = c
        .latest
        .iter()
        .map(|cell| {
            let name = c
                .by_purpose
                .iter()
                .find(|s| s.purpose == cell.purpose)
                .map_or(cell.purpose.as_str(), |s| s.name.as_str());
            vec![
                format!("{} — {}", cell.jurisdiction, name),
                thousands(cell.members),
                thousands(cell.allowed),
                pct(cell.share),
            ]
        })
        .collect();
    p.table(
        "Purpose × jurisdiction at the last instant",
        &["jurisdiction — purpose", "members", "allowed", "share"],
        &rows,
        &[1, 2, 3],
    );
    p.end_section();
}

fn exclusions(p: &mut Page, r: &Report) {
    p.section("exclusions", "Rows excluded from each dataset");
    if r.exclusions.is_empty() {
        p.p("", "None yet: no dataset has been registered (`consentry gate`).");
        p.end_section();
        return;
    }
    let bars: Vec<StackedBar> = r
        .exclusions
        .iter()
        .map(|d| StackedBar {
            label: format!("{} {}", d.purpose, short(&d.id)),
            parts: d.excluded_by_reason.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            note: match d.manifest {
                ManifestState::Verified => None,
                ManifestState::Missing => Some("manifest missing".into()),
                ManifestState::Altered => Some("manifest altered: unverified".into()),
            },
        })
        .collect();
    p.chart(&exclusions_chart(&bars));
    let mut reasons: Vec<&str> =
        r.exclusions.iter().flat_map(|d| d.excluded_by_reason.keys().map(String::as_str)).collect();
    reasons.sort_unstable();
    reasons.dedup();
    let mut header = vec!["dataset", "created", "members", "rows in", "rows out"];
    header.extend(reasons.iter().copied());
    header.push("manifest");
    let rows: Vec<Vec<String>> = r
        .exclusions
        .iter()
        .map(|d| {
            let opt = |v: Option<u64>| v.map_or("–".into(), thousands);
            let mut row = vec![
                format!("{} {}", d.purpose, short(&d.id)),
                when(d.created),
                thousands(d.members),
                opt(d.rows_in),
                opt(d.rows_out),
            ];
            row.extend(reasons.iter().map(|k| d.excluded_by_reason.get(*k).map_or("0".into(), |n| thousands(*n))));
            row.push(match d.manifest {
                ManifestState::Verified => "verified".into(),
                _ => format!("unverified: {}", d.manifest_problem.clone().unwrap_or_default()),
            });
            row
        })
        .collect();
    let nums: Vec<usize> = (2..5 + reasons.len()).collect();
    p.table("Rows excluded by reason, per dataset (the gate's manifest)", &header, &rows, &nums);
    p.end_section();
}

fn models(p: &mut Page, r: &Report) {
    p.section("models", "Model quality");
    if r.models.is_empty() {
        p.p("", "None yet: no model has been trained (`consentry train`).");
        p.end_section();
        return;
    }
    p.p(
        "note",
        "Held-out figures with 95 % intervals: Recall@20 and NDCG@10 for recommendations, top-3 intent accuracy for \
         reply suggestions, beside the baseline (popularity, most frequent intent) and, on synthetic data, the oracle \
         (the generator's own truth: the best any model could do).",
    );
    for m in &r.models {
        let dp = m.dp_epsilon.map_or("no differential privacy".to_string(), |e| format!("DP ε = {e:.2}"));
        let _ = write!(
            p.out,
            "<h3>{} v{} <code>{}</code> — {}</h3>",
            escape(&m.kind),
            m.version,
            escape(short(&m.id)),
            escape(&m.status)
        );
        p.p("meta", &format!("Purpose {}, trained {}, {dp}.", m.purpose, when(m.trained)));
        match m.files {
            ManifestState::Verified => {}
            ManifestState::Missing => {
                p.p("note", &format!("Files not available: {}", m.files_problem.clone().unwrap_or_default()))
            }
            ManifestState::Altered => {
                let _ = write!(
                    p.out,
                    r#"<p class="bad">Unverified: {}</p>"#,
                    escape(m.files_problem.as_deref().unwrap_or(""))
                );
            }
        }
        let labels: Vec<String> =
            m.rows.first().map_or(Vec::new(), |r| r.figures.iter().map(|f| f.label.clone()).collect());
        let mut header = vec!["row".to_string()];
        header.extend(labels);
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        let verified = if m.files == ManifestState::Altered { " (unverified)" } else { "" };
        let rows: Vec<Vec<String>> = m
            .rows
            .iter()
            .map(|row| {
                let mut cells = vec![format!("{}{}", row.label, if row.row == "model" { verified } else { "" })];
                cells.extend(row.figures.iter().map(fig));
                cells
            })
            .collect();
        let nums: Vec<usize> = (1..header.len()).collect();
        p.table(&format!("{} v{}: held-out quality [95 % interval]", m.kind, m.version), &header, &rows, &nums);
        if let Some(n) = &m.oracle_note {
            p.p("note", n);
        }
    }
    p.end_section();
}

fn dp(p: &mut Page, r: &Report) {
    p.section("dp", "Privacy and utility (differential privacy)");
    if let Some(how) = &r.dp.how_to {
        p.p("", how);
        p.end_section();
        return;
    }
    let mut kinds: Vec<&str> = r.dp.points.iter().map(|q| q.kind.as_str()).collect();
    kinds.dedup();
    let series: Vec<EpsilonSeries> = kinds
        .iter()
        .map(|k| EpsilonSeries {
            name: k.to_string(),
            points: r
                .dp
                .points
                .iter()
                .filter(|q| q.kind == *k)
                .filter_map(|q| {
                    let ci = q.figure.lo.zip(q.figure.hi);
                    Some((q.epsilon?, q.figure.value?, ci))
                })
                .collect(),
            reference: r.dp.references.iter().find(|q| q.kind == *k).and_then(|q| q.figure.value),
        })
        .collect();
    let metric = if kinds.iter().all(|k| *k == "replies") {
        "Top-3 intent accuracy"
    } else {
        "Recall@20 (top-3 accuracy for replies)"
    };
    p.chart(&epsilon_chart(&series, metric));
    let rows: Vec<Vec<String>> =
        r.dp.points
            .iter()
            .chain(&r.dp.references)
            .map(|q| {
                vec![
                    format!("{} {}{}", q.kind, short(&q.model), if q.verified { "" } else { " (unverified)" }),
                    q.epsilon.map_or("∞ (no DP)".into(), |e| format!("{e:.2}")),
                    q.figure.label.clone(),
                    fig(&q.figure),
                ]
            })
            .collect();
    p.table(
        "Utility against ε [95 % interval]; ε = ∞ is the model of the same kind without DP",
        &["model", "ε", "metric", "value"],
        &rows,
        &[1, 3],
    );
    p.end_section();
}

fn privacy_loss(p: &mut Page, r: &Report) {
    let d = &r.privacy_loss;
    p.section("privacy-loss", "Members' privacy loss");
    p.p("note", &d.method);
    if d.members == 0 {
        p.p("", "None yet: no live model holds any member's data.");
        p.end_section();
        return;
    }
    let label = |b: &consentry_app::report::LossBin| match b.hi {
        Some(hi) => format!("{}–{}", trim(b.lo), trim(hi)),
        None => format!("> {}", trim(b.lo)),
    };
    let last_used = d.bins.iter().rposition(|b| b.members > 0).map_or(0, |i| i + 1);
    let mut bins: Vec<HistBin> =
        d.bins[..last_used].iter().map(|b| HistBin { label: label(b), count: b.members, special: false }).collect();
    bins.push(HistBin { label: "no formal bound".into(), count: d.only_unbounded, special: true });
    p.chart(&histogram_chart(
        "Members by composed privacy loss ε",
        &bins,
        "members",
        "composed ε (hatched: no formal bound)",
    ));
    let rows: Vec<Vec<String>> = bins.iter().map(|b| vec![b.label.clone(), thousands(b.count)]).collect();
    p.table("Members by composed ε", &["ε", "members"], &rows, &[1]);
    p.p(
        "",
        &format!(
            "{} members are in at least one live model: {} with a formal bound, {} only in models with no formal bound; {} of the bounded members are also in a model without one (their ε does not cover that model).",
            thousands(d.members),
            thousands(d.bounded),
            thousands(d.only_unbounded),
            thousands(d.also_unbounded)
        ),
    );
    let rows: Vec<Vec<String>> = d
        .lines
        .iter()
        .map(|l| {
            vec![
                format!("{} {}", l.kind, short(&l.line)),
                l.purpose.clone(),
                l.epsilon.map_or("no formal bound".into(), |e| format!("{e:.3}")),
                l.delta.map_or("–".into(), |x| format!("{x:.1e}")),
                thousands(l.members),
            ]
        })
        .collect();
    p.table(
        "Model lines (first version id) and their bounds",
        &["line", "purpose", "ε", "δ", "members"],
        &rows,
        &[2, 3, 4],
    );
    p.end_section();
}

/// A bin edge without trailing zeros.
fn trim(v: f64) -> String {
    let t = format!("{v:.2}");
    t.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn unlearning(p: &mut Page, r: &Report) {
    let u = &r.unlearning;
    let c = &u.summary.compliance;
    p.section("unlearning", "Withdrawals and unlearning");
    p.p(
        "",
        &format!(
            "{} request(s): {} removed within the deadline, {} removed late, {} open ({} overdue). Median time to removal {}, 95th percentile {}, slowest {}; the service's deadline is {}.",
            thousands(u.requests.len() as u64),
            thousands(c.completed_on_time),
            thousands(c.completed_late),
            thousands(c.open),
            thousands(c.overdue),
            c.median_seconds.map_or("–".into(), |s| charts::duration(s as f64)),
            c.p95_seconds.map_or("–".into(), |s| charts::duration(s as f64)),
            c.max_seconds.map_or("–".into(), |s| charts::duration(s as f64)),
            charts::duration(u.summary.service_deadline_seconds as f64)
        ),
    );
    if u.requests.is_empty() && u.summary.awaiting_intake_total == 0 {
        p.p("", "None yet: no member has withdrawn from a trained model.");
        p.end_section();
        return;
    }
    let groups: Vec<charts::DurationGroup> = u
        .summary
        .models
        .iter()
        .map(|m| charts::DurationGroup {
            label: format!("{} v{} {}", m.kind, m.version, short(&m.model)),
            median: m.compliance.median_seconds.map(|s| s as f64),
            p95: m.compliance.p95_seconds.map(|s| s as f64),
            oldest_open: m.oldest_open_age_seconds.map(|s| s as f64),
            deadline: m.compliance.deadline_seconds.map(|s| s as f64),
        })
        .collect();
    p.chart(&charts::unlearning_chart(&groups));
    let rows: Vec<Vec<String>> = u
        .summary
        .models
        .iter()
        .map(|m| {
            let c = &m.compliance;
            let secs = |v: Option<i64>| v.map_or("–".into(), |s| charts::duration(s as f64));
            vec![
                format!("{} v{} {}", m.kind, m.version, short(&m.model)),
                thousands(c.completed_on_time),
                thousands(c.completed_late),
                thousands(c.open),
                secs(c.median_seconds),
                secs(c.p95_seconds),
                secs(c.deadline_seconds),
            ]
        })
        .collect();
    p.table(
        "Time from withdrawal to removal per model version",
        &["model version", "on time", "late", "open", "median", "95th percentile", "deadline"],
        &rows,
        &[1, 2, 3, 4, 5, 6],
    );
    let rows: Vec<Vec<String>> = u
        .requests
        .iter()
        .take(MAX_REQUEST_ROWS)
        .map(|q| {
            let rq = &q.request;
            let took = rq.completed_at.map(|t| charts::duration((t - rq.requested_at).max(0) as f64));
            vec![
                format!("withdrawal #{}", rq.event_seq),
                short(&rq.model).to_string(),
                when(rq.requested_at),
                rq.completed_at.map_or("not yet".into(), when),
                took.unwrap_or_else(|| "–".into()),
                when(rq.deadline),
                if q.overdue {
                    "missed".into()
                } else if rq.completed_at.is_some() {
                    "met".into()
                } else {
                    "pending".into()
                },
            ]
        })
        .collect();
    let caption = if u.requests.len() > MAX_REQUEST_ROWS {
        format!("Every request (first {MAX_REQUEST_ROWS} of {}; `consentry report --json` lists all)", u.requests.len())
    } else {
        "Every request: withdrawal → removal against its deadline".to_string()
    };
    p.table(
        &caption,
        &["request", "model version", "withdrawn", "removed", "took", "deadline", "deadline met"],
        &rows,
        &[],
    );
    if u.summary.awaiting_intake_total > 0 {
        p.p(
            "note",
            &format!(
                "{} withdrawal(s) await the unlearning worker's next pass.",
                thousands(u.summary.awaiting_intake_total as u64)
            ),
        );
    }
    p.end_section();
}

fn audit(p: &mut Page, r: &Report) {
    p.section("audit", "Audit");
    let Some(a) = &r.audit else {
        p.p("", "Not run for this report (`--no-audit`). Run `consentry audit` for the result.");
        p.end_section();
        return;
    };
    if a.ok {
        p.raw(r#"<p class="ok">Audit passed: no violation found.</p>"#);
    } else {
        let _ = write!(p.out, r#"<p class="bad">Audit failed: {} violation(s).</p>"#, a.violations);
    }
    p.p(
        "",
        &format!(
            "Judged at {} with a withdrawal deadline of {}: {} log entries rebuilt, {} signed tree head(s) and {} consistency proof(s) checked, {} members, {} dataset(s) and {} model version(s) recomputed against the ledger.",
            when(a.now),
            charts::duration(a.deadline_seconds as f64),
            thousands(a.ledger_entries),
            a.checkpoints,
            a.consistency_proofs,
            thousands(a.members),
            a.datasets,
            a.models
        ),
    );
    if !a.by_kind.is_empty() {
        let rows: Vec<Vec<String>> =
            a.by_kind.iter().map(|g| vec![g.kind.clone(), g.count.to_string(), g.messages.join(" | ")]).collect();
        p.table("Violations by kind", &["kind", "count", "messages"], &rows, &[1]);
    }
    if !a.notes.is_empty() {
        p.raw("<h3>Notes</h3><ul>");
        for n in &a.notes {
            p.raw("<li>");
            p.text(n);
            p.raw("</li>");
        }
        p.raw("</ul>");
    }
    p.end_section();
}

fn verify(p: &mut Page, r: &Report) {
    p.section("verify", "Verify it yourself");
    let Some(v) = &r.verify else {
        p.p("", "None yet: the ledger has no signed tree head (`consentry ledger checkpoint` signs one).");
        p.end_section();
        return;
    };
    let rows = vec![
        vec!["tree size".to_string(), thousands(v.tree_size)],
        vec!["root".to_string(), v.root.clone()],
        vec!["log id".to_string(), v.log_id.clone()],
        vec!["signing key id".to_string(), v.key_id.clone()],
        vec!["signed".to_string(), when(v.signed_at)],
        vec!["public key (ledger.pub)".to_string(), v.public_key.clone()],
        vec!["public key fingerprint".to_string(), v.fingerprint.clone()],
        vec!["public key file".to_string(), v.public_key_file.clone()],
    ];
    p.raw(r#"<div class="hash">"#);
    p.table("The latest signed tree head", &["field", "value"], &rows, &[]);
    p.raw("</div>");
    p.p("", "Obtain the public key from the operator through a channel you trust, compare its fingerprint, then run:");
    p.raw("<ol>");
    for s in &v.steps {
        p.raw("<li>");
        p.text(&s.what);
        p.raw("<pre><code>");
        p.text(&s.command);
        p.raw("</code></pre></li>");
    }
    p.raw("</ol>");
    p.end_section();
}

#[cfg(test)]
mod tests;
