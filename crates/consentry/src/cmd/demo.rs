//! `consentry demo`: the whole pipeline, stage by stage, on a synthetic network.

use super::{POLICY_FILE, init_data_dir, load_policy, synth};
use crate::ui::{self, Ctx, OK};
use anyhow::Context;
use consentry_policy::{ConsentEvent, Decision, DenyReason, MemberFacts, Policy};
use consentry_synth::{ChoiceRow, MemberRow, SynthConfig};
use serde::Serialize;
use std::collections::BTreeMap;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Number of synthetic members.
    #[arg(long, default_value_t = 20_000)]
    pub members: u64,
    /// Seed of every random stream.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// Effective consent for one purpose across all members.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct PurposeCoverage {
    pub purpose: String,
    pub members: u64,
    pub allowed: u64,
    pub denied: BTreeMap<&'static str, u64>,
}

/// Evaluates every member × purpose at `at` from the raw consent choices.
///
/// `choices` must be grouped by member (the generator writes them that way);
/// members without a row in `members` are skipped, since nothing is known of them.
pub fn coverage(policy: &Policy, members: &[MemberRow], choices: &[ChoiceRow], at: i64) -> Vec<PurposeCoverage> {
    let mut out: Vec<PurposeCoverage> = policy
        .purposes
        .iter()
        .map(|p| PurposeCoverage { purpose: p.key.clone(), members: 0, allowed: 0, denied: BTreeMap::new() })
        .collect();
    let mut by_member: BTreeMap<u64, (usize, usize)> = BTreeMap::new();
    let mut i = 0;
    while i < choices.len() {
        let id = choices[i].member_id;
        let start = i;
        while i < choices.len() && choices[i].member_id == id {
            i += 1;
        }
        by_member.insert(id, (start, i));
    }
    let mut events: Vec<ConsentEvent> = Vec::new();
    for m in members {
        let facts =
            MemberFacts { jurisdiction: policy.resolve_jurisdiction(&m.jurisdiction), birth_date: m.birth_date };
        let rows = by_member.get(&m.member_id).map_or(&choices[0..0], |(s, e)| &choices[*s..*e]);
        for id in policy.purpose_ids() {
            let key = &policy.purpose(id).key;
            events.clear();
            events.extend(rows.iter().filter(|c| &c.purpose == key).map(|c| ConsentEvent {
                at: c.event_time,
                action: c.action,
                notice_version: c.notice_version,
                source: c.source,
            }));
            let cov = &mut out[id.index()];
            cov.members += 1;
            match policy.evaluate(id, &facts, &events, at) {
                Decision::Allowed(_) => cov.allowed += 1,
                Decision::Denied(r) => *cov.denied.entry(r.as_str()).or_insert(0) += 1,
            }
        }
    }
    out
}

#[derive(Serialize)]
struct DemoReport {
    data_dir: String,
    policy: PolicyInfo,
    network: consentry_synth::SynthSummary,
    consent: Vec<PurposeCoverage>,
}

#[derive(Serialize)]
struct PolicyInfo {
    version: String,
    hash: String,
    purposes: usize,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    init_data_dir(ctx)?;
    ctx.say(format!("Consentry demo in {}\n", ctx.data.display()));

    ctx.say(format!("[1/3] policy in force: {}", ctx.data_path(POLICY_FILE).display()));
    let policy = load_policy(ctx, None)?;
    ctx.say(format!(
        "      version {}, {} purposes, {} jurisdiction rules — valid\n",
        policy.version,
        policy.purposes.len(),
        policy.jurisdictions.len()
    ));

    ctx.say(format!("[2/3] synthetic network: {} members, seed {}", ui::thousands(args.members), args.seed));
    let out = ctx.data_path("network");
    let synth_args = synth::Args {
        members: args.members,
        seed: args.seed,
        out: Some(out.clone()),
        as_of: SynthConfig::default_as_of(),
        policy: None,
    };
    let network = synth::generate(ctx, &synth_args, &out)?;
    if ctx.human() {
        let mut t = ui::table(&["jurisdiction", "members", "share"]);
        let mut by: Vec<(&String, &u64)> = network.members_by_jurisdiction.iter().collect();
        by.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let total = network.config.members;
        let shown = 10;
        for (j, n) in by.iter().take(shown) {
            t.add_row(vec![(*j).clone(), ui::thousands(**n), ui::percent(**n, total)]);
        }
        let rest: u64 = by.iter().skip(shown).map(|(_, n)| **n).sum();
        if rest > 0 {
            t.add_row(vec![format!("{} others", by.len() - shown), ui::thousands(rest), ui::percent(rest, total)]);
        }
        ui::align_numbers(&mut t);
        println!("{t}\n{} members are under 18 and never included.\n", ui::thousands(network.minors));
    }

    ctx.say(format!(
        "[3/3] effective consent on {} (policy {}, opt-in by default)",
        network.config.as_of, policy.version
    ));
    let members = consentry_synth::read_members(&out).context("reading the generated members")?;
    let choices = consentry_synth::read_consent_choices(&out).context("reading the generated consent choices")?;
    let consent = coverage(&policy, &members, &choices, network.config.as_of_timestamp());
    if ctx.human() {
        // Only the denial reasons that occur, so the table fits a terminal.
        let reasons: Vec<&str> = DenyReason::ALL
            .iter()
            .map(|r| r.as_str())
            .filter(|r| consent.iter().any(|c| c.denied.contains_key(r)))
            .collect();
        let labels: Vec<String> = reasons.iter().map(|r| format!("denied: {r}")).collect();
        let mut header = vec!["purpose", "allowed"];
        header.extend(labels.iter().map(String::as_str));
        let mut t = ui::table(&header);
        for c in &consent {
            let mut row = vec![
                c.purpose.trim_start_matches("train_ai_system.").to_string(),
                format!("{} ({})", ui::thousands(c.allowed), ui::percent(c.allowed, c.members)),
            ];
            row.extend(reasons.iter().map(|r| ui::thousands(c.denied.get(r).copied().unwrap_or(0))));
            t.add_row(row);
        }
        ui::align_numbers(&mut t);
        println!("{t}");
        println!(
            "{} consent events from {} members.",
            ui::thousands(choices.len() as u64),
            ui::thousands(members.len() as u64)
        );
    }
    if ctx.json {
        ctx.print_json(&DemoReport {
            data_dir: ctx.data.display().to_string(),
            policy: PolicyInfo {
                version: policy.version.clone(),
                hash: policy.hash.clone(),
                purposes: policy.purposes.len(),
            },
            network,
            consent,
        })?;
    }
    Ok(OK)
}
