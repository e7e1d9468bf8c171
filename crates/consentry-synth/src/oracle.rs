//! The hidden world's own truth about who engages with which job or post — **for benchmarks and the demo only**.
//!
//! A recommender's held-out recall means little alone: is 0.3 weak, or is the task hard? The oracle answers with
//! the physical limit of the task. It rebuilds the hidden world from a [`SynthConfig`] (the world is a
//! deterministic function of the seed, member count and as-of day, which `network/synth.json` records) and scores a
//! (member, item) pair by the generator's own truth, so a benchmark can rank items with it through the same
//! held-out evaluation as the model and report the model as a fraction of the oracle.
//!
//! Two scorings are offered ([`OracleMode`]):
//!
//! - [`OracleMode::Affinity`]: the hidden affinity alone (`world::job_affinity`, `world::post_affinity`), what the
//!   issue calls "ranks items by the true affinities".
//! - [`OracleMode::Likelihood`] (the default, and the stronger upper bound on the demo network): the log-probability
//!   that the item shows up in the member's activity at all. The generator draws ~40–48 candidates per member, partly
//!   from the member's industry and country (jobs) or topic pools (posts) and partly uniformly, then keeps the
//!   Gumbel-top-n by affinity — so `ln P(candidate) + affinity` is the Plackett–Luce log-odds of being kept, and for
//!   jobs, whose held-out targets are applications, `ln P(apply | affinity)` is added.
//!
//! Nothing in production may use this: it reads what no table shows (topic interests, job and post popularity).

use crate::SynthConfig;
use crate::generate::World;
use crate::world;

/// How the oracle scores a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OracleMode {
    /// The hidden affinity alone.
    Affinity,
    /// `ln P(candidate) + affinity` (+ `ln P(apply)` for jobs): the log-likelihood of the item being in the activity.
    #[default]
    Likelihood,
}

/// The hidden world, rebuilt, with the pool sizes the generator sampled candidates from.
pub struct Oracle {
    world: World,
    mode: OracleMode,
    jobs_by_industry: Vec<usize>,
    jobs_by_country: Vec<usize>,
    posts_by_topic: Vec<usize>,
}

/// Draws of job candidates per member, and the shares of the industry pool, the country pool and the whole
/// catalogue (generate.rs `job_activity`).
const JOB_DRAWS: f64 = 48.0;
const JOB_POOLS: (f64, f64, f64) = (0.45, 0.20, 0.35);
/// Draws of post candidates per member and the share of the member's topic pools (generate.rs `posts`).
const POST_DRAWS: f64 = 40.0;
const POST_TOPIC_SHARE: f64 = 0.5;

impl Oracle {
    /// Rebuilds the world of `cfg` (the same bytes the generator drew from); scores with [`OracleMode::default`].
    pub fn new(cfg: &SynthConfig) -> Oracle {
        Oracle::with_mode(cfg, OracleMode::default())
    }

    /// Rebuilds the world of `cfg`, scoring with `mode`.
    pub fn with_mode(cfg: &SynthConfig, mode: OracleMode) -> Oracle {
        let world = World::build(cfg);
        let count = |n: usize, key: &mut dyn Iterator<Item = usize>| {
            let mut c = vec![0usize; n];
            for k in key {
                c[k % n] += 1;
            }
            c
        };
        let jobs_by_industry = count(world::INDUSTRIES.len(), &mut world.jobs.iter().map(|j| usize::from(j.industry)));
        let jobs_by_country = count(world::COUNTRIES.len(), &mut world.jobs.iter().map(|j| usize::from(j.country)));
        let posts_by_topic = count(crate::text::TOPICS.len(), &mut world.posts.iter().map(|p| usize::from(p.topic)));
        Oracle { world, mode, jobs_by_industry, jobs_by_country, posts_by_topic }
    }

    /// The scoring in use.
    pub fn mode(&self) -> OracleMode {
        self.mode
    }

    fn member(&self, id: u64) -> Option<&world::Member> {
        self.world.members.get(usize::try_from(id.checked_sub(1)?).ok()?)
    }

    /// The truth score of job `job` for member `member` (ids as in the tables); `-inf` for unknown ids.
    pub fn job_score(&self, member: u64, job: u64) -> f32 {
        let (Some(m), Some(j)) = (
            self.member(member),
            job.checked_sub(1).and_then(|i| usize::try_from(i).ok()).and_then(|i| self.world.jobs.get(i)),
        ) else {
            return f32::NEG_INFINITY;
        };
        let aff = world::job_affinity(m, j);
        match self.mode {
            OracleMode::Affinity => aff,
            OracleMode::Likelihood => {
                let n = self.world.jobs.len() as f64;
                let pool = |matches: bool, size: usize| if matches && size > 0 { 1.0 / size as f64 } else { 0.0 };
                let q = JOB_POOLS.0 * pool(m.industry == j.industry, self.jobs_by_industry[usize::from(m.industry)])
                    + JOB_POOLS.1 * pool(m.country == j.country, self.jobs_by_country[usize::from(m.country)])
                    + JOB_POOLS.2 / n;
                let p_cand = 1.0 - (1.0 - q.min(1.0)).powf(JOB_DRAWS);
                // An application follows a view with probability sigmoid(1.6 (affinity − 2.6)).
                let p_apply = 1.0 / (1.0 + (-(1.6 * (f64::from(aff) - 2.6))).exp());
                (p_cand.ln() + f64::from(aff) + p_apply.ln()) as f32
            }
        }
    }

    /// The truth score of post `post` for member `member`; `-inf` for unknown ids and for the member's own posts
    /// (the generator never puts those in their feed).
    pub fn post_score(&self, member: u64, post: u64) -> f32 {
        let (Some(m), Some(p)) = (
            self.member(member),
            post.checked_sub(1).and_then(|i| usize::try_from(i).ok()).and_then(|i| self.world.posts.get(i)),
        ) else {
            return f32::NEG_INFINITY;
        };
        if u64::from(p.author) + 1 == member {
            return f32::NEG_INFINITY;
        }
        let Some(author) = self.world.members.get(p.author as usize) else { return f32::NEG_INFINITY };
        let aff = world::post_affinity(m, p, author);
        match self.mode {
            OracleMode::Affinity => aff,
            OracleMode::Likelihood => {
                let n = self.world.posts.len() as f64;
                // Each draw picks one of the member's three topics uniformly, then a post of that topic.
                let size = self.posts_by_topic[usize::from(p.topic) % self.posts_by_topic.len()].max(1) as f64;
                let in_topics = m.topics.iter().filter(|t| **t == p.topic).count() as f64;
                let q = POST_TOPIC_SHARE * in_topics / 3.0 / size + (1.0 - POST_TOPIC_SHARE) / n;
                let p_cand = 1.0 - (1.0 - q.min(1.0)).powf(POST_DRAWS);
                (p_cand.ln() + f64::from(aff)) as f32
            }
        }
    }

    /// Scores `items` for `member` into `out` with `score` ([`Oracle::job_score`] or [`Oracle::post_score`]).
    pub fn score_into(&self, score: fn(&Oracle, u64, u64) -> f32, member: u64, items: &[u64], out: &mut [f32]) {
        for (o, &i) in out.iter_mut().zip(items) {
            *o = score(self, member, i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> SynthConfig {
        SynthConfig { members: 300, seed: 7, as_of: SynthConfig::default_as_of() }
    }

    #[test]
    fn rebuilds_the_same_world_and_refuses_unknown_ids() {
        let (a, b) = (Oracle::new(&cfg()), Oracle::with_mode(&cfg(), OracleMode::Affinity));
        assert_eq!(a.job_score(3, 5), Oracle::new(&cfg()).job_score(3, 5));
        assert!(a.job_score(3, 5).is_finite() && b.job_score(3, 5).is_finite());
        assert_eq!(a.job_score(0, 1), f32::NEG_INFINITY);
        assert_eq!(a.job_score(1, 10_000), f32::NEG_INFINITY);
        assert_eq!(a.post_score(301, 1), f32::NEG_INFINITY);
    }

    #[test]
    fn a_member_never_gets_their_own_post_and_topic_posts_beat_others() {
        let o = Oracle::new(&cfg());
        let w = &o.world;
        let p = w.posts.first().expect("the test network has posts");
        assert_eq!(o.post_score(u64::from(p.author) + 1, 1), f32::NEG_INFINITY);
        // A member's main topic: on average its posts outscore the others.
        let m = 1u64;
        let main = w.members[0].topics[0];
        let (mut inside, mut outside) = (Vec::new(), Vec::new());
        for (i, q) in w.posts.iter().enumerate() {
            let s = o.post_score(m, i as u64 + 1);
            if s.is_finite() {
                if q.topic == main { inside.push(s) } else { outside.push(s) }
            }
        }
        let avg = |v: &[f32]| v.iter().sum::<f32>() / v.len().max(1) as f32;
        assert!(avg(&inside) > avg(&outside) + 1.0, "{} vs {}", avg(&inside), avg(&outside));
    }
}
