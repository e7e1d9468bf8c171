//! The hidden world behind the tables: who members are, what they are good
//! at, what they care about. Held compactly in memory (≈ 60 bytes a member) so
//! every table can be streamed from it; nothing here is written out directly.

use crate::names::{GIVEN_NAMES, SURNAMES};
use crate::text::TOPICS;
use chrono::{Datelike, NaiveDate};
use rand::Rng;
use rand::seq::IndexedRandom;
use rand_distr::{Distribution, LogNormal};

/// Countries members live in, with their share of members.
pub const COUNTRIES: &[(&str, f64)] = &[
    ("US", 0.30),
    ("IN", 0.11),
    ("GB", 0.08),
    ("DE", 0.07),
    ("BR", 0.06),
    ("FR", 0.05),
    ("CA", 0.04),
    ("NL", 0.03),
    ("ES", 0.03),
    ("IT", 0.03),
    ("AU", 0.03),
    ("JP", 0.03),
    ("SG", 0.02),
    ("IE", 0.02),
    ("CH", 0.02),
    ("PL", 0.02),
    ("SE", 0.02),
    ("NG", 0.02),
    ("MX", 0.01),
    ("KR", 0.01),
];

/// US states with their own privacy law or many members; the rest of the US has no region.
pub const US_REGIONS: &[(&str, f64)] = &[
    ("US-CA", 0.22),
    ("US-NY", 0.12),
    ("US-TX", 0.11),
    ("US-FL", 0.08),
    ("US-WA", 0.06),
    ("US-IL", 0.06),
    ("US-MA", 0.05),
    ("US-CO", 0.04),
];

/// An industry: the skills its people list and the roles they hold.
pub struct Industry {
    pub name: &'static str,
    pub skills: &'static [&'static str],
    pub roles: &'static [&'static str],
    /// Feed topics (indexes into [`TOPICS`]) its people lean towards.
    pub topics: &'static [usize],
}

/// The industries of the network.
pub const INDUSTRIES: &[Industry] = &[
    Industry {
        name: "Software",
        skills: &[
            "Rust",
            "Python",
            "Java",
            "Kubernetes",
            "AWS",
            "React",
            "SQL",
            "Distributed Systems",
            "Go",
            "TypeScript",
            "Machine Learning",
            "CI/CD",
        ],
        roles: &[
            "Software Engineer",
            "Backend Engineer",
            "Frontend Engineer",
            "DevOps Engineer",
            "Product Manager",
            "QA Engineer",
        ],
        topics: &[0, 4, 17, 9, 13],
    },
    Industry {
        name: "Data & Analytics",
        skills: &[
            "Python",
            "SQL",
            "Statistics",
            "Machine Learning",
            "Spark",
            "Tableau",
            "R",
            "Deep Learning",
            "Data Visualization",
            "dbt",
            "Airflow",
            "A/B Testing",
        ],
        roles: &[
            "Data Scientist",
            "Data Engineer",
            "Analytics Engineer",
            "ML Engineer",
            "Data Analyst",
            "BI Developer",
        ],
        topics: &[0, 8, 4, 14],
    },
    Industry {
        name: "Finance",
        skills: &[
            "Financial Modeling",
            "Excel",
            "Valuation",
            "Risk Management",
            "Accounting",
            "Bloomberg",
            "Corporate Finance",
            "IFRS",
            "Portfolio Management",
            "Compliance",
            "Auditing",
            "Python",
        ],
        roles: &["Financial Analyst", "Accountant", "Investment Analyst", "Risk Manager", "Controller", "Auditor"],
        topics: &[10, 13, 1, 14],
    },
    Industry {
        name: "Healthcare",
        skills: &[
            "Patient Care",
            "Clinical Research",
            "EHR Systems",
            "Nursing",
            "Healthcare Management",
            "Medical Devices",
            "Pharmacology",
            "HIPAA",
            "Public Health",
            "Epidemiology",
            "Telemedicine",
            "Triage",
        ],
        roles: &[
            "Registered Nurse",
            "Clinical Research Associate",
            "Healthcare Administrator",
            "Physician Assistant",
            "Pharmacist",
            "Medical Technologist",
        ],
        topics: &[11, 18, 15],
    },
    Industry {
        name: "Education",
        skills: &[
            "Curriculum Design",
            "Teaching",
            "E-Learning",
            "Classroom Management",
            "Instructional Design",
            "Educational Technology",
            "Tutoring",
            "Assessment",
            "Special Education",
            "Research",
            "Grant Writing",
            "Mentoring",
        ],
        roles: &[
            "Teacher",
            "Instructional Designer",
            "Lecturer",
            "Education Consultant",
            "School Administrator",
            "Learning Specialist",
        ],
        topics: &[15, 14, 19, 18],
    },
    Industry {
        name: "Manufacturing",
        skills: &[
            "Lean Manufacturing",
            "Six Sigma",
            "AutoCAD",
            "Quality Control",
            "Supply Chain Management",
            "PLC Programming",
            "SolidWorks",
            "Process Improvement",
            "ERP",
            "Root Cause Analysis",
            "Maintenance",
            "Safety",
        ],
        roles: &[
            "Manufacturing Engineer",
            "Quality Engineer",
            "Production Manager",
            "Process Engineer",
            "Plant Manager",
            "Maintenance Technician",
        ],
        topics: &[16, 12, 2],
    },
    Industry {
        name: "Retail",
        skills: &[
            "Merchandising",
            "Retail Sales",
            "Inventory Management",
            "Customer Service",
            "Visual Merchandising",
            "E-commerce",
            "Pricing",
            "Category Management",
            "POS Systems",
            "Store Operations",
            "Buying",
            "CRM",
        ],
        roles: &[
            "Store Manager",
            "Merchandiser",
            "E-commerce Manager",
            "Buyer",
            "Retail Associate",
            "Category Manager",
        ],
        topics: &[6, 7, 16],
    },
    Industry {
        name: "Marketing & Advertising",
        skills: &[
            "SEO",
            "Content Marketing",
            "Google Ads",
            "Social Media Marketing",
            "Copywriting",
            "Brand Strategy",
            "Marketing Automation",
            "Analytics",
            "Email Marketing",
            "Public Relations",
            "HubSpot",
            "Market Research",
        ],
        roles: &[
            "Marketing Manager",
            "Content Strategist",
            "SEO Specialist",
            "Brand Manager",
            "Growth Marketer",
            "Copywriter",
        ],
        topics: &[7, 6, 13, 5],
    },
    Industry {
        name: "Consulting",
        skills: &[
            "Strategy",
            "Business Analysis",
            "Change Management",
            "Stakeholder Management",
            "PowerPoint",
            "Financial Modeling",
            "Operations",
            "Due Diligence",
            "Process Mapping",
            "Workshops",
            "Market Entry",
            "Excel",
        ],
        roles: &[
            "Management Consultant",
            "Business Analyst",
            "Strategy Consultant",
            "Engagement Manager",
            "Associate Consultant",
            "Advisor",
        ],
        topics: &[2, 13, 14, 10],
    },
    Industry {
        name: "Cybersecurity",
        skills: &[
            "Penetration Testing",
            "SIEM",
            "Incident Response",
            "Network Security",
            "Threat Intelligence",
            "ISO 27001",
            "Cloud Security",
            "Identity Management",
            "Vulnerability Management",
            "Forensics",
            "Cryptography",
            "SOC",
        ],
        roles: &[
            "Security Engineer",
            "Security Analyst",
            "Penetration Tester",
            "CISO",
            "SOC Analyst",
            "Security Architect",
        ],
        topics: &[9, 4, 0],
    },
    Industry {
        name: "Energy",
        skills: &[
            "Renewable Energy",
            "Project Engineering",
            "Power Systems",
            "Solar",
            "Wind Energy",
            "Energy Efficiency",
            "Grid Integration",
            "HSE",
            "Oil & Gas",
            "Energy Trading",
            "Sustainability Reporting",
            "Battery Storage",
        ],
        roles: &[
            "Energy Analyst",
            "Project Engineer",
            "Electrical Engineer",
            "Sustainability Manager",
            "Field Engineer",
            "Energy Trader",
        ],
        topics: &[12, 16, 10],
    },
    Industry {
        name: "Logistics",
        skills: &[
            "Logistics",
            "Fleet Management",
            "Warehouse Management",
            "Procurement",
            "Freight Forwarding",
            "Demand Planning",
            "SAP",
            "Customs",
            "Last-Mile Delivery",
            "Route Optimization",
            "Vendor Management",
            "Forecasting",
        ],
        roles: &[
            "Logistics Coordinator",
            "Supply Chain Analyst",
            "Warehouse Manager",
            "Procurement Specialist",
            "Fleet Manager",
            "Planner",
        ],
        topics: &[16, 12, 2],
    },
    Industry {
        name: "Media",
        skills: &[
            "Journalism",
            "Video Production",
            "Editing",
            "Storytelling",
            "Adobe Premiere",
            "Photography",
            "Podcasting",
            "Social Media",
            "Broadcasting",
            "Content Strategy",
            "Fact-Checking",
            "Interviewing",
        ],
        roles: &["Journalist", "Editor", "Producer", "Video Editor", "Content Creator", "Photographer"],
        topics: &[7, 5, 19],
    },
    Industry {
        name: "Legal",
        skills: &[
            "Contract Law",
            "Litigation",
            "Legal Research",
            "GDPR",
            "Corporate Law",
            "Intellectual Property",
            "Compliance",
            "Negotiation",
            "Employment Law",
            "Due Diligence",
            "Drafting",
            "Privacy",
        ],
        roles: &["Lawyer", "Paralegal", "Legal Counsel", "Compliance Officer", "Privacy Officer", "Associate Attorney"],
        topics: &[9, 2, 19],
    },
    Industry {
        name: "Biotech",
        skills: &[
            "Molecular Biology",
            "CRISPR",
            "Bioinformatics",
            "Cell Culture",
            "GMP",
            "Regulatory Affairs",
            "Clinical Trials",
            "PCR",
            "Protein Engineering",
            "Lab Management",
            "Drug Discovery",
            "Python",
        ],
        roles: &[
            "Research Scientist",
            "Lab Technician",
            "Bioinformatician",
            "Regulatory Specialist",
            "Clinical Scientist",
            "Process Development Scientist",
        ],
        topics: &[11, 0, 8, 12],
    },
];

/// Skills anyone may list, whatever their industry.
pub const GENERAL_SKILLS: &[&str] = &[
    "Communication",
    "Leadership",
    "Project Management",
    "Teamwork",
    "Problem Solving",
    "Public Speaking",
    "Time Management",
    "Negotiation",
    "Presentation Skills",
    "Mentoring",
    "Agile",
    "Customer Relationship",
];

/// Seniority levels; the title prefix of each.
pub const SENIORITY: &[&str] = &["Intern", "Junior", "", "Senior", "Lead", "Principal"];

/// The global skill vocabulary: industry skills first (deduplicated), then general ones.
pub struct SkillTable {
    pub names: Vec<&'static str>,
    /// For each industry, the ids of its skills.
    pub by_industry: Vec<Vec<u16>>,
    pub general: Vec<u16>,
}

impl SkillTable {
    pub fn new() -> SkillTable {
        let mut names: Vec<&'static str> = Vec::new();
        let id = |s: &'static str, names: &mut Vec<&'static str>| -> u16 {
            match names.iter().position(|n| *n == s) {
                Some(i) => i as u16,
                None => {
                    names.push(s);
                    (names.len() - 1) as u16
                }
            }
        };
        let by_industry = INDUSTRIES.iter().map(|ind| ind.skills.iter().map(|s| id(s, &mut names)).collect()).collect();
        let general = GENERAL_SKILLS.iter().map(|s| id(s, &mut names)).collect();
        SkillTable { names, by_industry, general }
    }
}

/// Up to eight skills, stored inline so a million members stay small.
#[derive(Clone, Copy, Default)]
pub struct Skills {
    ids: [u16; 8],
    len: u8,
}

impl Skills {
    pub fn as_slice(&self) -> &[u16] {
        &self.ids[..usize::from(self.len)]
    }

    fn push_unique(&mut self, id: u16) {
        if usize::from(self.len) < self.ids.len() && !self.as_slice().contains(&id) {
            self.ids[usize::from(self.len)] = id;
            self.len += 1;
        }
    }

    /// How many skills two lists share.
    pub fn overlap(&self, other: &Skills) -> usize {
        self.as_slice().iter().filter(|s| other.as_slice().contains(s)).count()
    }

    fn draw<R: Rng + ?Sized>(rng: &mut R, table: &SkillTable, industry: usize, n: usize, general_share: f64) -> Skills {
        let mut s = Skills::default();
        let mut guard = 0;
        while usize::from(s.len) < n && guard < 64 {
            guard += 1;
            let pool = if rng.random_bool(general_share) { &table.general } else { &table.by_industry[industry] };
            if let Some(id) = pool.choose(rng) {
                s.push_unique(*id);
            }
        }
        s
    }
}

/// A member as the generator knows them, including what the tables never show.
#[derive(Clone, Copy)]
pub struct Member {
    pub given: u16,
    pub surname: u16,
    pub country: u8,
    /// Index into [`US_REGIONS`] + 1, or 0 for none.
    pub region: u8,
    pub industry: u8,
    pub seniority: u8,
    pub birth: NaiveDate,
    pub skills: Skills,
    /// Hidden topic interests: three topics and their weights.
    pub topics: [u8; 3],
    pub topic_weights: [f32; 3],
    /// Hidden activity level (multiplies how much they browse, post and write).
    pub activity: f32,
}

impl Member {
    pub fn country_code(&self) -> &'static str {
        COUNTRIES[usize::from(self.country)].0
    }

    /// `US-CA` for members in a listed region, else the country code.
    pub fn jurisdiction(&self) -> &'static str {
        match self.region {
            0 => self.country_code(),
            r => US_REGIONS[usize::from(r) - 1].0,
        }
    }

    pub fn given_name(&self) -> &'static str {
        GIVEN_NAMES[usize::from(self.given) % GIVEN_NAMES.len()]
    }

    pub fn surname(&self) -> &'static str {
        SURNAMES[usize::from(self.surname) % SURNAMES.len()]
    }

    pub fn title(&self) -> String {
        let role = INDUSTRIES[usize::from(self.industry)].roles[usize::from(self.seniority) % 6];
        match SENIORITY[usize::from(self.seniority)] {
            "" => role.to_string(),
            p => format!("{p} {role}"),
        }
    }

    /// Hidden interest in a topic, 0 when it is not among the member's three.
    pub fn interest(&self, topic: u8) -> f32 {
        self.topics.iter().zip(self.topic_weights).find(|(t, _)| **t == topic).map_or(0.0, |(_, w)| w)
    }
}

/// A job posting.
#[derive(Clone, Copy)]
pub struct Job {
    pub company: u16,
    pub country: u8,
    pub industry: u8,
    pub seniority: u8,
    pub skills: Skills,
    /// Hidden popularity (brand, salary): log-normal around 1.
    pub popularity: f32,
    pub posted_day: u16,
}

/// A post's hidden facts, kept for feed activity.
#[derive(Clone, Copy)]
pub struct Post {
    pub author: u32,
    pub topic: u8,
    pub popularity: f32,
    pub day: u16,
}

/// Draws an index from `(item, weight)` pairs.
pub fn weighted<R: Rng + ?Sized, T>(rng: &mut R, items: &[(T, f64)]) -> usize {
    let total: f64 = items.iter().map(|(_, w)| w).sum();
    let mut x = rng.random::<f64>() * total;
    for (i, (_, w)) in items.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    items.len() - 1
}

/// Draws a member. About 2 % are 16 or 17 on `as_of`.
pub fn member<R: Rng + ?Sized>(rng: &mut R, skills: &SkillTable, as_of: NaiveDate) -> Member {
    let country = weighted(rng, COUNTRIES);
    let region = if COUNTRIES[country].0 == "US" {
        let r = rng.random::<f64>();
        let mut acc = 0.0;
        let mut found = 0;
        for (i, (_, w)) in US_REGIONS.iter().enumerate() {
            acc += w;
            if r < acc {
                found = i + 1;
                break;
            }
        }
        found as u8
    } else {
        0
    };
    let industry = rng.random_range(0..INDUSTRIES.len());
    let age_days: i64 = if rng.random_bool(0.02) {
        rng.random_range(16 * 365 + 5..18 * 365 - 5)
    } else {
        // 18 to 67, skewed towards the late twenties and thirties.
        let years = 18.0 + 49.0 * rng.random::<f64>().powf(1.6);
        (years * 365.25) as i64 + 2
    };
    let birth = as_of - chrono::Duration::days(age_days);
    let age = as_of.year() - birth.year();
    let seniority = match age {
        ..=19 => 0,
        20..=23 => rng.random_range(0..=2),
        24..=29 => rng.random_range(1..=3),
        30..=39 => rng.random_range(2..=4),
        _ => rng.random_range(2..=5),
    };
    let n_skills = rng.random_range(3..=8);
    let skills = Skills::draw(rng, skills, industry, n_skills, 0.25);
    let ind = &INDUSTRIES[industry];
    let mut topics = [0u8; 3];
    topics[0] = *ind.topics.choose(rng).unwrap_or(&0) as u8;
    for t in 1..3 {
        topics[t] = loop {
            let c = if rng.random_bool(0.5) {
                *ind.topics.choose(rng).unwrap_or(&0)
            } else {
                rng.random_range(0..TOPICS.len())
            } as u8;
            if !topics[..t].contains(&c) {
                break c;
            }
        };
    }
    let a: f32 = rng.random_range(0.5..1.0);
    let b: f32 = rng.random_range(0.0..(1.0 - a));
    let activity = LogNormal::new(0.0, 0.6).map_or(1.0, |d| d.sample(rng)) as f32;
    Member {
        given: rng.random_range(0..GIVEN_NAMES.len()) as u16,
        surname: rng.random_range(0..SURNAMES.len()) as u16,
        country: country as u8,
        region,
        industry: industry as u8,
        seniority,
        birth,
        skills,
        topics,
        topic_weights: [a, b, 1.0 - a - b],
        activity: activity.min(6.0),
    }
}

/// Draws a job; its country follows where members are.
pub fn job<R: Rng + ?Sized>(rng: &mut R, skills: &SkillTable, companies: usize, days: u16) -> Job {
    let industry = rng.random_range(0..INDUSTRIES.len());
    let n = rng.random_range(3..=6);
    Job {
        company: rng.random_range(0..companies) as u16,
        country: weighted(rng, COUNTRIES) as u8,
        industry: industry as u8,
        seniority: rng.random_range(0..SENIORITY.len()) as u8,
        skills: Skills::draw(rng, skills, industry, n, 0.2),
        popularity: LogNormal::new(0.0, 0.8).map_or(1.0, |d| d.sample(rng)) as f32,
        posted_day: rng.random_range(0..days),
    }
}

/// The hidden member–job affinity that job activity is drawn from.
///
/// Skills overlap matters most, then industry, seniority fit and country; a
/// recommender that learns these beats one that only knows popularity.
pub fn job_affinity(m: &Member, j: &Job) -> f32 {
    let overlap = m.skills.overlap(&j.skills) as f32 / j.skills.as_slice().len().max(1) as f32;
    let industry = if m.industry == j.industry { 1.0 } else { 0.0 };
    let country = if m.country == j.country { 0.8 } else { 0.0 };
    let seniority = -0.5 * (f32::from(m.seniority) - f32::from(j.seniority)).abs();
    3.0 * overlap + industry + country + seniority + 0.5 * j.popularity.ln()
}

/// The hidden member–post affinity that feed activity is drawn from.
pub fn post_affinity(m: &Member, p: &Post, author: &Member) -> f32 {
    4.0 * m.interest(p.topic) + if author.industry == m.industry { 0.5 } else { 0.0 } + 0.6 * p.popularity.ln()
}

/// A standard Gumbel draw: adding it to scores and taking the top k samples a softmax without replacement.
pub fn gumbel<R: Rng + ?Sized>(rng: &mut R) -> f32 {
    let u: f64 = rng.random_range(1e-12..1.0);
    -(-u.ln()).ln() as f32
}
