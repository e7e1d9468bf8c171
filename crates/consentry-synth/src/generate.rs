//! Streams every table from the hidden world. Each table draws from its own
//! ChaCha stream, so tables are generated in parallel and still come out
//! byte-identical for a seed, whatever the thread scheduling.

use crate::out::{TableFile, TableInfo};
use crate::text::{self, MessageContext, Person, Text};
use crate::world::{self, INDUSTRIES, Job, Member, Post, SkillTable};
use crate::{Progress, SynthConfig, SynthError, names, pii};
use chrono::NaiveDate;
use consentry_policy::{Action, Policy, Source};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;

/// Independent random streams, one per generation stage.
#[derive(Clone, Copy)]
enum Stream {
    World = 0,
    Members = 1,
    Consent = 2,
    JobActivity = 3,
    Posts = 4,
    Network = 5,
    /// Message text and reply draws (connections keep `Network`, so message changes leave them alone).
    Messages = 6,
}

fn rng(seed: u64, stream: Stream) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream as u64);
    r
}

const DAY: i64 = 86_400;

/// Everything the tables are drawn from.
pub(crate) struct World {
    pub members: Vec<Member>,
    pub jobs: Vec<Job>,
    pub posts: Vec<Post>,
    pub skills: SkillTable,
    /// First day of the activity window, days since the Unix epoch.
    pub start_day: i64,
    /// Length of the activity window in days.
    pub days: u16,
}

impl World {
    pub(crate) fn build(cfg: &SynthConfig) -> World {
        let mut r = rng(cfg.seed, Stream::World);
        let skills = SkillTable::new();
        let members: Vec<Member> = (0..cfg.members).map(|_| world::member(&mut r, &skills, cfg.as_of)).collect();
        let days: u16 = 365;
        let n_jobs = (cfg.members / 10).max(50) as usize;
        let jobs = (0..n_jobs).map(|_| world::job(&mut r, &skills, names::COMPANIES.len(), days - 30)).collect();
        let mut posts = Vec::new();
        for (i, m) in members.iter().enumerate() {
            let n = poisson(&mut r, 0.5 * f64::from(m.activity));
            for _ in 0..n {
                let topic = if r.random_bool(0.8) { m.topics[0] } else { m.topics[r.random_range(0..3)] };
                posts.push(Post {
                    author: i as u32,
                    topic,
                    popularity: (r.random::<f32>() * 2.0 + 0.1) * m.activity.sqrt(),
                    day: r.random_range(0..days - 7),
                });
            }
        }
        let start_day =
            cfg.as_of.signed_duration_since(NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()).num_days()
                - i64::from(days);
        World { members, jobs, posts, skills, start_day, days }
    }

    fn member_id(i: usize) -> u64 {
        i as u64 + 1
    }

    fn day_start(&self, day: u16) -> i64 {
        (self.start_day + i64::from(day)) * DAY
    }
}

/// Knuth's Poisson draw; fine for the small means used here.
fn poisson<R: Rng + ?Sized>(r: &mut R, mean: f64) -> u32 {
    let l = (-mean).exp();
    let mut k = 0;
    let mut p = 1.0;
    loop {
        p *= r.random::<f64>();
        if p <= l || k > 1000 {
            return k;
        }
        k += 1;
    }
}

/// Generates all tables into `out` (which must exist).
pub(crate) fn run(
    cfg: &SynthConfig,
    policy: &Policy,
    out: &Path,
    progress: &dyn Progress,
) -> Result<Vec<TableInfo>, SynthError> {
    progress.stage("world", cfg.members);
    let w = World::build(cfg);
    progress.advance("world", cfg.members);
    let results: Vec<Result<Vec<TableInfo>, SynthError>> = std::thread::scope(|s| {
        let w = &w;
        let handles = vec![
            s.spawn(move || members(cfg, w, out, progress)),
            s.spawn(move || consent(cfg, policy, w, out, progress)),
            s.spawn(move || job_activity(cfg, w, out, progress)),
            s.spawn(move || posts(cfg, w, out, progress)),
            s.spawn(move || network(cfg, w, out, progress)),
        ];
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(SynthError::Panicked))).collect()
    });
    let mut tables = Vec::new();
    for r in results {
        tables.extend(r?);
    }
    tables.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(tables)
}

fn days_since_epoch(d: NaiveDate) -> i32 {
    d.signed_duration_since(NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()).num_days() as i32
}

fn members(cfg: &SynthConfig, w: &World, out: &Path, progress: &dyn Progress) -> Result<Vec<TableInfo>, SynthError> {
    let mut r = rng(cfg.seed, Stream::Members);
    let mut t = TableFile::create(out, "members", crate::schemas::MEMBERS)?;
    let mut emp = TableFile::create(out, "employment", crate::schemas::EMPLOYMENT)?;
    progress.stage("members", cfg.members);
    for (i, m) in w.members.iter().enumerate() {
        let id = World::member_id(i);
        let (given, surname) = (m.given_name(), m.surname());
        let rows = &mut t.rows;
        rows.u64(0, id);
        rows.str(1, given);
        rows.str(2, surname);
        rows.str(3, &pii::email(&mut r, given, surname));
        rows.str(4, &pii::phone(&mut r, m.country_code()));
        rows.str(5, m.country_code());
        rows.opt_str(6, (m.region > 0).then(|| m.jurisdiction()));
        rows.str(7, m.jurisdiction());
        rows.date(8, days_since_epoch(m.birth));
        rows.str(9, INDUSTRIES[usize::from(m.industry)].name);
        rows.str(10, &m.title());
        rows.u8(11, m.seniority);
        rows.str_list(12, m.skills.as_slice().iter().map(|s| w.skills.names[usize::from(*s)]));
        let joined = w.day_start(0) - r.random_range(0..2000) * DAY;
        rows.time(13, joined);
        t.end_row()?;

        // Employment history: current job plus up to three earlier ones, newest first.
        let mut end: Option<NaiveDate> = None;
        let mut start = cfg.as_of - chrono::Duration::days(r.random_range(60..2200));
        let adult = m.birth + chrono::Duration::days(18 * 365 + 200);
        for k in 0..r.random_range(1..=4) {
            if start < adult {
                break;
            }
            let seniority = usize::from(m.seniority).saturating_sub(k);
            let role = INDUSTRIES[usize::from(m.industry)].roles[(seniority + k) % 6];
            let rows = &mut emp.rows;
            rows.u64(0, id);
            rows.str(1, names::COMPANIES.choose(&mut r).copied().unwrap_or("Acme"));
            rows.str(2, role);
            rows.date(3, days_since_epoch(start));
            rows.opt_date(4, end.map(days_since_epoch));
            emp.end_row()?;
            end = Some(start - chrono::Duration::days(r.random_range(0..120)));
            start -= chrono::Duration::days(r.random_range(300..2500));
        }
        if i % 4096 == 4095 {
            progress.advance("members", 4096);
        }
    }
    progress.advance("members", cfg.members % 4096);
    Ok(vec![t.finish()?, emp.finish()?])
}

/// Grant rates by jurisdiction: members in the EEA grant least, in the US most.
fn grant_rate(jurisdiction: &str) -> f64 {
    let country = jurisdiction.split('-').next().unwrap_or(jurisdiction);
    if consentry_policy::iso3166::EEA.contains(&country) {
        0.35
    } else {
        match country {
            "GB" | "CH" => 0.40,
            "US" => 0.55,
            _ => 0.50,
        }
    }
}

fn consent(
    cfg: &SynthConfig,
    policy: &Policy,
    w: &World,
    out: &Path,
    progress: &dyn Progress,
) -> Result<Vec<TableInfo>, SynthError> {
    let mut r = rng(cfg.seed, Stream::Consent);
    let mut t = TableFile::create(out, "consent_choices", crate::schemas::CONSENT_CHOICES)?;
    progress.stage("consent_choices", cfg.members);
    let as_of = cfg.as_of_timestamp();
    struct Ev {
        at: i64,
        purpose: usize,
        action: Action,
        version: u32,
        source: Source,
    }
    let mut events: Vec<Ev> = Vec::new();
    let mut non_sensitive_rank = 0.0;
    let factors: Vec<f64> = policy
        .purposes
        .iter()
        .map(|p| {
            if p.categories.iter().any(|c| policy.category(c).is_some_and(|c| c.sensitive)) {
                0.7
            } else {
                non_sensitive_rank += 1.0;
                1.2 - 0.2 * non_sensitive_rank
            }
        })
        .collect();
    for (i, m) in w.members.iter().enumerate() {
        events.clear();
        let id = World::member_id(i);
        let jur = m.jurisdiction();
        let base = grant_rate(jur) * f64::from(m.activity.min(2.0) * 0.35 + 0.65);
        for (pi, p) in policy.purposes.iter().enumerate() {
            let first = p.notices[0].effective;
            if first >= as_of {
                continue;
            }
            let span = as_of - first;
            if r.random_bool((base * factors[pi]).clamp(0.0, 0.95)) {
                let at = first + r.random_range(0..span);
                let version = p.notice_at(at).map_or(p.notices[0].version, |n| n.version);
                let source = if at < first + 20 * DAY {
                    Source::Import
                } else if r.random_bool(0.15) {
                    Source::Api
                } else {
                    Source::Ui
                };
                events.push(Ev { at, purpose: pi, action: Action::Grant, version, source });
                // Re-consent after a material notice change, for about half.
                if let Some(next) = p.notices.iter().find(|n| n.material && n.effective > at && n.effective < as_of)
                    && r.random_bool(0.5)
                {
                    let at = next.effective + r.random_range(0..(as_of - next.effective).max(1));
                    events.push(Ev {
                        at,
                        purpose: pi,
                        action: Action::Grant,
                        version: next.version,
                        source: Source::Ui,
                    });
                }
                let last = events.last().map_or(at, |e| e.at);
                if r.random_bool(0.12) && last + DAY < as_of {
                    let wat = r.random_range(last + 1..as_of);
                    events.push(Ev {
                        at: wat,
                        purpose: pi,
                        action: Action::Withdraw,
                        version: p.notice_at(wat).map_or(version, |n| n.version),
                        source: Source::Ui,
                    });
                    if r.random_bool(0.1) && wat + DAY < as_of {
                        let gat = r.random_range(wat + 1..as_of);
                        let v = p.notice_at(gat).map_or(version, |n| n.version);
                        events.push(Ev { at: gat, purpose: pi, action: Action::Grant, version: v, source: Source::Ui });
                    }
                }
            } else if r.random_bool(0.08) {
                // An explicit "no" at the prompt.
                let at = first + r.random_range(0..span);
                let version = p.notice_at(at).map_or(p.notices[0].version, |n| n.version);
                events.push(Ev { at, purpose: pi, action: Action::Withdraw, version, source: Source::Ui });
            }
        }
        // Global Privacy Control: Californians mostly, a few elsewhere in the US.
        let gpc_rate = match jur {
            "US-CA" => 0.12,
            j if j.starts_with("US") => 0.03,
            _ => 0.0,
        };
        if gpc_rate > 0.0 && r.random_bool(gpc_rate) {
            let first = policy.purposes.iter().map(|p| p.notices[0].effective).min().unwrap_or(as_of);
            let at = first + r.random_range(0..(as_of - first).max(1));
            for (pi, p) in policy.purposes.iter().enumerate() {
                if p.gpc_withdraws {
                    let version = p.notice_at(at).map_or(p.notices[0].version, |n| n.version);
                    events.push(Ev { at, purpose: pi, action: Action::Withdraw, version, source: Source::Gpc });
                }
            }
        }
        events.sort_by_key(|e| (e.at, e.purpose));
        for e in &events {
            let rows = &mut t.rows;
            rows.u64(0, id);
            rows.str(1, &policy.purposes[e.purpose].key);
            rows.str(2, e.action.as_str());
            rows.u32(3, e.version);
            rows.str(4, e.source.as_str());
            let actor = match e.source {
                Source::Gpc => "gpc-signal".to_string(),
                Source::Import => "import:legacy-consent-db".to_string(),
                _ => format!("member:{id}"),
            };
            rows.str(5, &actor);
            rows.time(6, e.at);
            t.end_row()?;
        }
        if i % 4096 == 4095 {
            progress.advance("consent_choices", 4096);
        }
    }
    progress.advance("consent_choices", cfg.members % 4096);
    Ok(vec![t.finish()?])
}

/// Indexes of items grouped by a small key, for drawing candidates.
fn group_by<T>(items: &[T], groups: usize, key: impl Fn(&T) -> usize) -> Vec<Vec<u32>> {
    let mut out = vec![Vec::new(); groups];
    for (i, it) in items.iter().enumerate() {
        out[key(it) % groups].push(i as u32);
    }
    out
}

fn job_activity(
    cfg: &SynthConfig,
    w: &World,
    out: &Path,
    progress: &dyn Progress,
) -> Result<Vec<TableInfo>, SynthError> {
    let mut r = rng(cfg.seed, Stream::JobActivity);
    let mut jobs_t = TableFile::create(out, "jobs", crate::schemas::JOBS)?;
    for (j, job) in w.jobs.iter().enumerate() {
        let ind = &INDUSTRIES[usize::from(job.industry)];
        let title = match world::SENIORITY[usize::from(job.seniority)] {
            "" => ind.roles[j % ind.roles.len()].to_string(),
            p => format!("{p} {}", ind.roles[j % ind.roles.len()]),
        };
        let rows = &mut jobs_t.rows;
        rows.u64(0, j as u64 + 1);
        rows.str(1, &title);
        rows.str(2, names::COMPANIES[usize::from(job.company) % names::COMPANIES.len()]);
        rows.str(3, ind.name);
        rows.str(4, world::COUNTRIES[usize::from(job.country)].0);
        rows.u8(5, job.seniority);
        rows.str_list(6, job.skills.as_slice().iter().map(|s| w.skills.names[usize::from(*s)]));
        rows.time(7, w.day_start(job.posted_day) + r.random_range(0..DAY));
        jobs_t.end_row()?;
    }
    let by_industry = group_by(&w.jobs, INDUSTRIES.len(), |j| usize::from(j.industry));
    let by_country = group_by(&w.jobs, world::COUNTRIES.len(), |j| usize::from(j.country));
    let mut t = TableFile::create(out, "job_activity", crate::schemas::JOB_ACTIVITY)?;
    progress.stage("job_activity", cfg.members);
    let mut cands: Vec<(f32, u32)> = Vec::with_capacity(64);
    let mut acts: Vec<(i64, u32, bool)> = Vec::new();
    for (i, m) in w.members.iter().enumerate() {
        let views = (f64::from(m.activity) * r.random_range(3.0..14.0)).round() as usize;
        cands.clear();
        for _ in 0..48 {
            let x = r.random::<f64>();
            let pool: Option<&Vec<u32>> = if x < 0.45 {
                Some(&by_industry[usize::from(m.industry)])
            } else if x < 0.65 {
                Some(&by_country[usize::from(m.country)])
            } else {
                None
            };
            let j = match pool.and_then(|p| p.choose(&mut r)) {
                Some(j) => *j,
                None => r.random_range(0..w.jobs.len()) as u32,
            };
            if cands.iter().any(|(_, c)| *c == j) {
                continue;
            }
            cands.push((world::job_affinity(m, &w.jobs[j as usize]) + world::gumbel(&mut r), j));
        }
        cands.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        acts.clear();
        for &(_, j) in cands.iter().take(views) {
            let job = &w.jobs[j as usize];
            let day = r.random_range(job.posted_day..w.days);
            let at = w.day_start(day) + r.random_range(0..DAY);
            let aff = world::job_affinity(m, job);
            let apply = r.random::<f32>() < 1.0 / (1.0 + (-(1.6 * (aff - 2.6))).exp());
            acts.push((at, j, false));
            if apply {
                acts.push((at + r.random_range(60..3 * DAY), j, true));
            }
        }
        acts.sort();
        for &(at, j, apply) in &acts {
            let rows = &mut t.rows;
            rows.u64(0, World::member_id(i));
            rows.u64(1, u64::from(j) + 1);
            rows.str(2, if apply { "apply" } else { "view" });
            rows.time(3, at);
            t.end_row()?;
        }
        if i % 4096 == 4095 {
            progress.advance("job_activity", 4096);
        }
    }
    progress.advance("job_activity", cfg.members % 4096);
    Ok(vec![jobs_t.finish()?, t.finish()?])
}

fn member_context<'a>(
    w: &'a World,
    sender: usize,
    recipient: usize,
    mentioned: usize,
    title: &'a str,
) -> MessageContext<'a> {
    let (s, rc, mn) = (&w.members[sender], &w.members[recipient], &w.members[mentioned]);
    MessageContext {
        sender: Person { given: s.given_name(), surname: s.surname() },
        recipient: Person { given: rc.given_name(), surname: rc.surname() },
        mentioned: Person { given: mn.given_name(), surname: mn.surname() },
        sender_country: s.country_code(),
        sender_title: title,
        sender_industry: INDUSTRIES[usize::from(s.industry)].name,
        company: names::COMPANIES[(sender * 7 + 3) % names::COMPANIES.len()],
    }
}

/// Writes one free-text value's planted PII into a ground-truth table.
fn write_truth(truth: &mut TableFile, row_id: u64, column: &str, t: &Text) -> Result<(), SynthError> {
    for p in &t.planted {
        let rows = &mut truth.rows;
        rows.u64(0, row_id);
        rows.str(1, column);
        rows.u32(2, p.start as u32);
        rows.u32(3, p.end as u32);
        rows.str(4, p.kind.as_str());
        rows.str(5, &t.text[p.start..p.end]);
        truth.end_row()?;
    }
    Ok(())
}

fn posts(cfg: &SynthConfig, w: &World, out: &Path, progress: &dyn Progress) -> Result<Vec<TableInfo>, SynthError> {
    let mut r = rng(cfg.seed, Stream::Posts);
    let mut t = TableFile::create(out, "posts", crate::schemas::POSTS)?;
    let mut truth = TableFile::create(out, "posts_pii", crate::schemas::PII_TRUTH)?;
    progress.stage("posts", w.posts.len() as u64 + cfg.members);
    for (pid, p) in w.posts.iter().enumerate() {
        let author = p.author as usize;
        let mentioned = r.random_range(0..w.members.len());
        let title = w.members[author].title();
        let ctx = member_context(w, author, author, mentioned, &title);
        let body = text::post(&mut r, usize::from(p.topic), &ctx);
        let rows = &mut t.rows;
        rows.u64(0, pid as u64 + 1);
        rows.u64(1, World::member_id(author));
        rows.str(2, text::TOPICS[usize::from(p.topic) % text::TOPICS.len()]);
        rows.str(3, &body.text);
        rows.time(4, w.day_start(p.day) + r.random_range(0..DAY));
        t.end_row()?;
        write_truth(&mut truth, pid as u64 + 1, "text", &body)?;
        if pid % 4096 == 4095 {
            progress.advance("posts", 4096);
        }
    }
    progress.advance("posts", w.posts.len() as u64 % 4096);
    let mut feed = TableFile::create(out, "feed_activity", crate::schemas::FEED_ACTIVITY)?;
    let by_topic = group_by(&w.posts, text::TOPICS.len(), |p| usize::from(p.topic));
    let mut cands: Vec<(f32, u32)> = Vec::with_capacity(64);
    let mut acts: Vec<(i64, u32, bool)> = Vec::new();
    for (i, m) in w.members.iter().enumerate() {
        if w.posts.is_empty() {
            break;
        }
        let n = (f64::from(m.activity) * r.random_range(2.0..10.0)).round() as usize;
        cands.clear();
        for _ in 0..40 {
            let pool =
                if r.random_bool(0.5) { by_topic.get(usize::from(m.topics[r.random_range(0..3)])) } else { None };
            let p = match pool.and_then(|p| p.choose(&mut r)) {
                Some(p) => *p,
                None => r.random_range(0..w.posts.len()) as u32,
            };
            let post = &w.posts[p as usize];
            if post.author as usize == i || cands.iter().any(|(_, c)| *c == p) {
                continue;
            }
            let author = &w.members[post.author as usize];
            cands.push((world::post_affinity(m, post, author) + world::gumbel(&mut r), p));
        }
        cands.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        acts.clear();
        for &(_, p) in cands.iter().take(n) {
            let post = &w.posts[p as usize];
            let day = r.random_range(post.day..w.days);
            acts.push((w.day_start(day) + r.random_range(0..DAY), p, r.random_bool(0.15)));
        }
        acts.sort();
        for &(at, p, comment) in &acts {
            let rows = &mut feed.rows;
            rows.u64(0, World::member_id(i));
            rows.u64(1, u64::from(p) + 1);
            rows.str(2, if comment { "comment" } else { "react" });
            rows.time(3, at);
            feed.end_row()?;
        }
        if i % 4096 == 4095 {
            progress.advance("posts", 4096);
        }
    }
    progress.advance("posts", cfg.members % 4096);
    Ok(vec![t.finish()?, truth.finish()?, feed.finish()?])
}

/// Mean threads a year between two connected members of average activity (scaled by their mean activity): about
/// 14 messages sent per member a year, a quiet professional network's volume (most connections never write; a
/// few write often).
const THREADS_PER_CONNECTION: f64 = 0.6;

/// Probability that an opening is answered.
const FIRST_REPLY: f64 = 0.8;

/// Each further answer in a thread is this much less likely than the one before (about 1.5 replies per thread).
const REPLY_DECAY: f64 = 0.7;

fn network(cfg: &SynthConfig, w: &World, out: &Path, progress: &dyn Progress) -> Result<Vec<TableInfo>, SynthError> {
    let mut r = rng(cfg.seed, Stream::Network);
    let n = w.members.len();
    progress.stage("connections", n as u64);
    // Homophily: most connections stay within an industry and country.
    let buckets = group_by(&w.members, INDUSTRIES.len() * world::COUNTRIES.len(), |m| {
        usize::from(m.industry) * world::COUNTRIES.len() + usize::from(m.country)
    });
    let by_industry = group_by(&w.members, INDUSTRIES.len(), |m| usize::from(m.industry));
    let by_country = group_by(&w.members, world::COUNTRIES.len(), |m| usize::from(m.country));
    let mut edges: Vec<(u32, u32)> = Vec::new();
    for (i, m) in w.members.iter().enumerate() {
        let k = (f64::from(m.activity) * r.random_range(2.0..8.0)).round() as usize;
        for _ in 0..k {
            let x = r.random::<f64>();
            let pool = if x < 0.5 {
                Some(&buckets[usize::from(m.industry) * world::COUNTRIES.len() + usize::from(m.country)])
            } else if x < 0.7 {
                Some(&by_industry[usize::from(m.industry)])
            } else if x < 0.85 {
                Some(&by_country[usize::from(m.country)])
            } else {
                None
            };
            let other = match pool.and_then(|p| p.choose(&mut r)) {
                Some(o) => *o as usize,
                None => r.random_range(0..n),
            };
            if other != i {
                edges.push((i.min(other) as u32, i.max(other) as u32));
            }
        }
        if i % 4096 == 4095 {
            progress.advance("connections", 4096);
        }
    }
    progress.advance("connections", n as u64 % 4096);
    edges.sort_unstable();
    edges.dedup();
    let mut conn = TableFile::create(out, "connections", crate::schemas::CONNECTIONS)?;
    let mut msgs = TableFile::create(out, "messages", crate::schemas::MESSAGES)?;
    let mut truth = TableFile::create(out, "messages_pii", crate::schemas::PII_TRUTH)?;
    let mut conditions = TableFile::create(out, "messages_truth", crate::schemas::MESSAGES_TRUTH)?;
    let mut rm = rng(cfg.seed, Stream::Messages);
    progress.stage("messages", edges.len() as u64);
    let mut message_id = 0u64;
    let mut thread_id = 0u64;
    let last_day = i64::from(w.days);
    for (e, &(a, b)) in edges.iter().enumerate() {
        let day = r.random_range(0..w.days - 2);
        let connected_at = w.day_start(day) + r.random_range(0..DAY);
        let rows = &mut conn.rows;
        rows.u64(0, World::member_id(a as usize));
        rows.u64(1, World::member_id(b as usize));
        rows.time(2, connected_at);
        conn.end_row()?;

        let (ma, mb) = (&w.members[a as usize], &w.members[b as usize]);
        // Threads over the year between two connected members: a Poisson number, more between active members.
        let threads = poisson(&mut rm, THREADS_PER_CONNECTION * f64::from(ma.activity + mb.activity) / 2.0);
        for _ in 0..threads {
            thread_id += 1;
            let (first, second) = if rm.random_bool(0.5) { (a as usize, b as usize) } else { (b as usize, a as usize) };
            let mut at = connected_at + rm.random_range(600..(last_day - i64::from(day)).max(2) * DAY / 2);
            let mentioned = rm.random_range(0..n);
            let title = w.members[first].title();
            let ctx = member_context(w, first, second, mentioned, &title);
            let (kind, opening) = text::opening(&mut rm, &ctx);
            let mut cond = text::ReplyCondition::Opening(kind);
            message_id += 1;
            write_message(&mut msgs, &mut truth, message_id, thread_id, (first, second), None, &opening, at)?;
            write_condition(&mut conditions, message_id, cond)?;
            // Replies alternate: second answers first, first answers back, …; each answers the message before it.
            let mut prev = message_id;
            let mut turn = (first, second);
            let mut p_reply = FIRST_REPLY;
            while rm.random_bool(p_reply) {
                let (asker, replier) = turn;
                let title = w.members[asker].title();
                let ctx = member_context(w, asker, replier, mentioned, &title);
                let (intent, body) = text::reply_to(&mut rm, &ctx, cond);
                at += rm.random_range(60..2 * DAY);
                message_id += 1;
                write_message(&mut msgs, &mut truth, message_id, thread_id, (replier, asker), Some(prev), &body, at)?;
                cond = text::ReplyCondition::Reply(intent);
                write_condition(&mut conditions, message_id, cond)?;
                prev = message_id;
                turn = (replier, asker);
                p_reply *= REPLY_DECAY;
            }
        }
        if e % 4096 == 4095 {
            progress.advance("messages", 4096);
        }
    }
    progress.advance("messages", edges.len() as u64 % 4096);
    Ok(vec![conn.finish()?, msgs.finish()?, truth.finish()?, conditions.finish()?])
}

/// Records what a reply to message `id` is drawn conditional on (the reply oracle's ground truth).
fn write_condition(t: &mut TableFile, id: u64, cond: text::ReplyCondition) -> Result<(), SynthError> {
    let (kind, label) = cond.truth();
    let rows = &mut t.rows;
    rows.u64(0, id);
    rows.str(1, kind);
    rows.str(2, label);
    t.end_row()
}

#[allow(clippy::too_many_arguments)]
fn write_message(
    msgs: &mut TableFile,
    truth: &mut TableFile,
    id: u64,
    thread: u64,
    (sender, recipient): (usize, usize),
    reply_to: Option<u64>,
    body: &Text,
    at: i64,
) -> Result<(), SynthError> {
    let rows = &mut msgs.rows;
    rows.u64(0, id);
    rows.u64(1, thread);
    rows.u64(2, World::member_id(sender));
    rows.u64(3, World::member_id(recipient));
    rows.opt_u64(4, reply_to);
    rows.str(5, &body.text);
    rows.time(6, at);
    msgs.end_row()?;
    write_truth(truth, id, "text", body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_mean_is_close() {
        let mut r = ChaCha8Rng::seed_from_u64(3);
        let n = 20_000;
        let sum: u32 = (0..n).map(|_| poisson(&mut r, 2.5)).sum();
        let mean = f64::from(sum) / f64::from(n);
        assert!((mean - 2.5).abs() < 0.1, "{mean}");
    }
}
