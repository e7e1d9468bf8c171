//! Free text — first messages, replies and feed posts — with planted PII and
//! exact ground truth.
//!
//! Every PII value is appended through [`Text::push_pii`], which records its
//! UTF-8 byte span, so the ground truth is exact by construction: spans are
//! sorted, non-overlapping, on char boundaries and cover only the value (never
//! surrounding punctuation). Templates use `{SLOT}` placeholders that are
//! filled from the [`MessageContext`] and the RNG, which yields thousands of
//! distinct texts from a few dozen templates.

use rand::Rng;
use rand_distr::{Distribution, Zipf};

use crate::names;
use crate::pii::{self, pick, weighted};

/// Kind of a planted PII item, the label set of the ground-truth tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PiiKind {
    /// Email address.
    Email,
    /// Telephone number, national or international form.
    Phone,
    /// Web address, with or without scheme.
    Url,
    /// IPv4 or IPv6 address.
    Ip,
    /// Luhn-valid payment card number.
    CreditCard,
    /// International bank account number.
    Iban,
    /// US Social Security number.
    Ssn,
    /// Postal street address.
    Address,
    /// A person's name (given name, surname or full name).
    Person,
}

impl PiiKind {
    /// Every kind, in label order, so reports can iterate over all of them.
    pub const ALL: [PiiKind; 9] = [
        PiiKind::Email,
        PiiKind::Phone,
        PiiKind::Url,
        PiiKind::Ip,
        PiiKind::CreditCard,
        PiiKind::Iban,
        PiiKind::Ssn,
        PiiKind::Address,
        PiiKind::Person,
    ];

    /// Upper-case label stored in the ground-truth tables.
    pub fn as_str(self) -> &'static str {
        match self {
            PiiKind::Email => "EMAIL",
            PiiKind::Phone => "PHONE",
            PiiKind::Url => "URL",
            PiiKind::Ip => "IP",
            PiiKind::CreditCard => "CREDIT_CARD",
            PiiKind::Iban => "IBAN",
            PiiKind::Ssn => "SSN",
            PiiKind::Address => "ADDRESS",
            PiiKind::Person => "PERSON",
        }
    }
}

/// One planted PII item: UTF-8 byte offsets into [`Text::text`], end exclusive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planted {
    /// Byte offset of the first byte of the value.
    pub start: usize,
    /// Byte offset one past the last byte of the value.
    pub end: usize,
    /// What the value is.
    pub kind: PiiKind,
}

/// Generated free text together with the exact spans of the PII planted in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Text {
    /// The text as a member would have written it.
    pub text: String,
    /// Planted PII, sorted by position and non-overlapping.
    pub planted: Vec<Planted>,
}

impl Text {
    /// Appends text that carries no PII.
    pub fn push(&mut self, s: &str) {
        self.text.push_str(s);
    }

    /// Appends a PII value and records its exact span (empty values are ignored).
    pub fn push_pii(&mut self, kind: PiiKind, s: &str) {
        if s.is_empty() {
            return;
        }
        let start = self.text.len();
        self.text.push_str(s);
        self.planted.push(Planted { start, end: self.text.len(), kind });
    }
}

/// A named person referred to in generated text.
#[derive(Debug, Clone, Copy)]
pub struct Person<'a> {
    /// Given (first) name.
    pub given: &'a str,
    /// Surname, possibly with particles (`van der Berg`).
    pub surname: &'a str,
}

/// Who writes to whom, and what the writer's profile says, so text can be filled with consistent details.
#[derive(Debug, Clone, Copy)]
pub struct MessageContext<'a> {
    /// Author of a first message or post; addressee of a reply.
    pub sender: Person<'a>,
    /// Addressee of a first message; author of a reply.
    pub recipient: Person<'a>,
    /// Another member who may be name-dropped.
    pub mentioned: Person<'a>,
    /// ISO 3166-1 alpha-2 country of the sender (phone and address formats).
    pub sender_country: &'a str,
    /// The sender's job title.
    pub sender_title: &'a str,
    /// The sender's industry.
    pub sender_industry: &'a str,
    /// The sender's employer.
    pub company: &'a str,
}

/// Feed topics; a post's topic is an index into this list.
pub const TOPICS: &[&str] = &[
    "artificial intelligence",
    "hiring",
    "leadership",
    "remote work",
    "cloud computing",
    "product design",
    "sales",
    "marketing",
    "data science",
    "cybersecurity",
    "finance",
    "healthcare",
    "sustainability",
    "startups",
    "career advice",
    "education",
    "supply chain",
    "web development",
    "mental health at work",
    "diversity and inclusion",
];

/// Per-topic keywords and hashtags (same order as [`TOPICS`]).
const VOCAB: &[(&[&str], &[&str])] = &[
    (
        &[
            "large language models",
            "AI governance",
            "model evaluation",
            "retrieval-augmented generation",
            "responsible AI",
            "AI copilots",
            "fine-tuning",
            "computer vision",
        ],
        &["AI", "MachineLearning", "GenAI", "ResponsibleAI"],
    ),
    (
        &[
            "structured interviews",
            "our hiring pipeline",
            "take-home assignments",
            "candidate experience",
            "employer branding",
            "internal referrals",
            "onboarding",
            "job descriptions",
        ],
        &["Hiring", "Recruiting", "TalentAcquisition", "WeAreHiring"],
    ),
    (
        &[
            "one-on-ones",
            "giving feedback",
            "psychological safety",
            "delegation",
            "decision-making",
            "leading through change",
            "first-time managers",
            "team rituals",
        ],
        &["Leadership", "Management", "TeamCulture"],
    ),
    (
        &[
            "async communication",
            "hybrid schedules",
            "distributed teams",
            "home office setups",
            "meeting-free days",
            "working across time zones",
            "remote onboarding",
            "team offsites",
        ],
        &["RemoteWork", "FutureOfWork", "Hybrid"],
    ),
    (
        &[
            "Kubernetes",
            "cloud cost optimisation",
            "serverless",
            "multi-cloud strategy",
            "infrastructure as code",
            "observability",
            "platform engineering",
            "cloud migrations",
        ],
        &["Cloud", "DevOps", "Kubernetes", "FinOps"],
    ),
    (
        &[
            "user research",
            "design systems",
            "accessibility",
            "prototyping",
            "usability testing",
            "onboarding flows",
            "dark patterns",
            "design critiques",
        ],
        &["UX", "ProductDesign", "Accessibility"],
    ),
    (
        &[
            "pipeline reviews",
            "discovery calls",
            "enterprise deals",
            "cold outreach",
            "sales enablement",
            "quota planning",
            "customer objections",
            "renewals",
        ],
        &["Sales", "B2B", "SalesLeadership"],
    ),
    (
        &[
            "brand storytelling",
            "content strategy",
            "marketing attribution",
            "community building",
            "product launches",
            "SEO",
            "email campaigns",
            "customer personas",
        ],
        &["Marketing", "ContentMarketing", "Branding"],
    ),
    (
        &[
            "A/B testing",
            "causal inference",
            "data quality",
            "feature stores",
            "forecasting models",
            "dashboards nobody reads",
            "experimentation platforms",
            "data contracts",
        ],
        &["DataScience", "Analytics", "Data"],
    ),
    (
        &[
            "phishing simulations",
            "zero trust",
            "incident response",
            "supply-chain attacks",
            "security awareness training",
            "password managers",
            "threat modelling",
            "ransomware",
        ],
        &["CyberSecurity", "InfoSec", "ZeroTrust"],
    ),
    (
        &[
            "cash-flow forecasting",
            "budgeting season",
            "unit economics",
            "interest rates",
            "audit readiness",
            "treasury management",
            "FP&A",
            "ESG reporting",
        ],
        &["Finance", "FinTech", "CFO"],
    ),
    (
        &[
            "patient outcomes",
            "telehealth",
            "clinical trials",
            "nurse staffing",
            "health data interoperability",
            "preventive care",
            "digital therapeutics",
            "hospital operations",
        ],
        &["Healthcare", "HealthTech", "DigitalHealth"],
    ),
    (
        &[
            "carbon accounting",
            "net-zero targets",
            "circular design",
            "renewable energy",
            "scope 3 emissions",
            "green software",
            "sustainable supply chains",
            "climate risk",
        ],
        &["Sustainability", "ClimateAction", "NetZero"],
    ),
    (
        &[
            "fundraising",
            "product-market fit",
            "our seed round",
            "founder burnout",
            "early hires",
            "pivoting",
            "bootstrapping",
            "go-to-market",
        ],
        &["Startups", "Founders", "VentureCapital"],
    ),
    (
        &[
            "salary negotiation",
            "career switches",
            "mentorship",
            "personal branding",
            "imposter syndrome",
            "networking",
            "side projects",
            "getting promoted",
        ],
        &["CareerAdvice", "CareerGrowth", "Mentorship"],
    ),
    (
        &[
            "lifelong learning",
            "online courses",
            "apprenticeships",
            "curriculum design",
            "student engagement",
            "edtech tools",
            "teacher training",
            "micro-credentials",
        ],
        &["Education", "EdTech", "Learning"],
    ),
    (
        &[
            "inventory planning",
            "nearshoring",
            "last-mile delivery",
            "supplier diversity",
            "demand forecasting",
            "warehouse automation",
            "port congestion",
            "procurement",
        ],
        &["SupplyChain", "Logistics", "Procurement"],
    ),
    (
        &[
            "TypeScript",
            "web performance",
            "server-side rendering",
            "WebAssembly",
            "CSS architecture",
            "accessibility audits",
            "API design",
            "frontend testing",
        ],
        &["WebDev", "JavaScript", "Frontend"],
    ),
    (
        &[
            "burnout",
            "setting boundaries",
            "manager check-ins",
            "employee assistance programmes",
            "workload planning",
            "taking real holidays",
            "stress management",
            "quiet time for deep work",
        ],
        &["MentalHealth", "Wellbeing", "WorkLifeBalance"],
    ),
    (
        &[
            "inclusive hiring",
            "employee resource groups",
            "pay equity",
            "allyship",
            "neurodiversity",
            "inclusive language",
            "representation in leadership",
            "accessibility at work",
        ],
        &["DiversityAndInclusion", "DEI", "Inclusion"],
    ),
];

/// Reply intents; [`reply`] returns an index into this list.
pub const INTENTS: &[&str] = &[
    "thanks",
    "thanks_for_reaching_out",
    "sounds_good",
    "will_review",
    "will_get_back",
    "schedule_call",
    "propose_time",
    "interested",
    "not_interested",
    "no_thanks",
    "congrats",
    "thanks_for_congrats",
    "send_resume",
    "resume_sent",
    "follow_up_later",
    "yes",
    "agree",
    "happy_to_help",
    "ask_details",
    "apologise_delay",
    "great_to_connect",
    "intro_accepted",
    "referral_ok",
    "refer_elsewhere",
    "already_applied",
    "out_of_office",
    "on_it",
    "confirm_received",
    "ask_salary",
    "welcome",
];

/// Indices into [`INTENTS`], named so the reply inventory reads naturally.
mod intent {
    pub const THANKS: u16 = 0;
    pub const THANKS_FOR_REACHING_OUT: u16 = 1;
    pub const SOUNDS_GOOD: u16 = 2;
    pub const WILL_REVIEW: u16 = 3;
    pub const WILL_GET_BACK: u16 = 4;
    pub const SCHEDULE_CALL: u16 = 5;
    pub const PROPOSE_TIME: u16 = 6;
    pub const INTERESTED: u16 = 7;
    pub const NOT_INTERESTED: u16 = 8;
    pub const NO_THANKS: u16 = 9;
    pub const CONGRATS: u16 = 10;
    pub const THANKS_FOR_CONGRATS: u16 = 11;
    pub const SEND_RESUME: u16 = 12;
    pub const RESUME_SENT: u16 = 13;
    pub const FOLLOW_UP_LATER: u16 = 14;
    pub const YES: u16 = 15;
    pub const AGREE: u16 = 16;
    pub const HAPPY_TO_HELP: u16 = 17;
    pub const ASK_DETAILS: u16 = 18;
    pub const APOLOGISE_DELAY: u16 = 19;
    pub const GREAT_TO_CONNECT: u16 = 20;
    pub const INTRO_ACCEPTED: u16 = 21;
    pub const REFERRAL_OK: u16 = 22;
    pub const REFER_ELSEWHERE: u16 = 23;
    pub const ALREADY_APPLIED: u16 = 24;
    pub const OUT_OF_OFFICE: u16 = 25;
    pub const ON_IT: u16 = 26;
    pub const CONFIRM_RECEIVED: u16 = 27;
    pub const ASK_SALARY: u16 = 28;
    pub const WELCOME: u16 = 29;
}

use intent::*;

/// Reply inventory in popularity order (rank 1 first); each string belongs to exactly one intent.
const REPLIES: &[(u16, &str)] = &[
    (SOUNDS_GOOD, "Sounds good!"),
    (THANKS, "Thanks!"),
    (THANKS_FOR_REACHING_OUT, "Thanks for reaching out!"),
    (WILL_REVIEW, "Thanks, I'll take a look."),
    (THANKS, "Thank you!"),
    (WILL_GET_BACK, "Let me check and get back to you."),
    (CONGRATS, "Congrats!!"),
    (YES, "Yes, that works."),
    (NOT_INTERESTED, "Not at the moment, thanks."),
    (SCHEDULE_CALL, "Sure, what time works for you?"),
    (CONGRATS, "Congratulations on the new role!"),
    (GREAT_TO_CONNECT, "Great to connect!"),
    (THANKS, "Thanks a lot!"),
    (INTERESTED, "Yes, I'd be interested to hear more."),
    (SOUNDS_GOOD, "Sounds great, thanks."),
    (HAPPY_TO_HELP, "Happy to help!"),
    (WILL_REVIEW, "Will have a look and let you know."),
    (AGREE, "Totally agree."),
    (ASK_DETAILS, "Could you share a bit more detail?"),
    (APOLOGISE_DELAY, "Sorry for the late reply!"),
    (THANKS, "Thank you so much!"),
    (FOLLOW_UP_LATER, "Can we pick this up next week?"),
    (SEND_RESUME, "Sure, I'll send over my CV."),
    (NO_THANKS, "No thanks, but I appreciate you thinking of me."),
    (YES, "Yes!"),
    (THANKS_FOR_CONGRATS, "Thanks, really appreciate the kind words!"),
    (SCHEDULE_CALL, "Happy to jump on a call."),
    (SOUNDS_GOOD, "Perfect, thanks!"),
    (WILL_GET_BACK, "I'll get back to you by the end of the week."),
    (THANKS_FOR_REACHING_OUT, "Thanks for getting in touch."),
    (INTERESTED, "That sounds interesting, tell me more."),
    (CONFIRM_RECEIVED, "Got it, thanks."),
    (SOUNDS_GOOD, "Great, see you then."),
    (PROPOSE_TIME, "How about Tuesday at 10?"),
    (AGREE, "Couldn't agree more."),
    (CONGRATS, "Congrats, well deserved!"),
    (NOT_INTERESTED, "I'm happy where I am for now, but thanks."),
    (THANKS, "Thanks so much, really appreciate it."),
    (ON_IT, "On it."),
    (ASK_DETAILS, "What's the salary range?"),
    (GREAT_TO_CONNECT, "Nice to meet you too!"),
    (HAPPY_TO_HELP, "Of course, happy to help."),
    (YES, "Yes, definitely."),
    (WILL_REVIEW, "I'll read through it tonight."),
    (APOLOGISE_DELAY, "Apologies for the slow response."),
    (FOLLOW_UP_LATER, "Let's reconnect in a couple of weeks."),
    (THANKS_FOR_CONGRATS, "Thank you! Excited for the next chapter."),
    (SCHEDULE_CALL, "Let's set up a quick call."),
    (SOUNDS_GOOD, "Works for me."),
    (SEND_RESUME, "Could you send me your resume?"),
    (CONFIRM_RECEIVED, "Received, thank you."),
    (INTRO_ACCEPTED, "Thanks for the intro!"),
    (CONGRATS, "Congratulations!"),
    (THANKS, "Many thanks."),
    (PROPOSE_TIME, "I'm free Thursday afternoon, does that work?"),
    (REFERRAL_OK, "Happy to refer you, send me the job link."),
    (NO_THANKS, "Thanks, but I'll pass this time."),
    (WILL_GET_BACK, "Let me think about it."),
    (AGREE, "Absolutely."),
    (ASK_DETAILS, "Is the role remote?"),
    (INTERESTED, "I'd love to learn more about the role."),
    (GREAT_TO_CONNECT, "Likewise, great to connect."),
    (THANKS_FOR_REACHING_OUT, "Thanks for the message!"),
    (OUT_OF_OFFICE, "I'm travelling this week, back on Monday."),
    (SOUNDS_GOOD, "Sounds like a plan."),
    (YES, "Sure!"),
    (WELCOME, "You're welcome!"),
    (ALREADY_APPLIED, "I've already applied, actually."),
    (CONFIRM_RECEIVED, "Got your message, will reply properly soon."),
    (SCHEDULE_CALL, "Can we do a 15-minute call tomorrow?"),
    (HAPPY_TO_HELP, "No problem at all."),
    (THANKS, "Cheers!"),
    (APOLOGISE_DELAY, "Sorry, this slipped through the cracks."),
    (REFER_ELSEWHERE, "I'm not the right person, but I can introduce you to someone who is."),
    (RESUME_SENT, "Just sent my CV over email."),
    (NOT_INTERESTED, "Not looking right now, but let's stay in touch."),
    (CONGRATS, "Huge congrats!"),
    (WILL_REVIEW, "I'll have a look this afternoon."),
    (ASK_SALARY, "What's the compensation like?"),
    (FOLLOW_UP_LATER, "Ping me again after the holidays?"),
    (AGREE, "Exactly my thoughts."),
    (THANKS_FOR_CONGRATS, "Thanks! It's been a long road."),
    (INTERESTED, "Open to a chat, yes."),
    (ON_IT, "I'll take care of it."),
    (PROPOSE_TIME, "Monday morning works best for me."),
    (YES, "Yes please."),
    (THANKS, "Thanks, that's really helpful."),
    (SOUNDS_GOOD, "Okay, sounds good."),
    (GREAT_TO_CONNECT, "Good to hear from you!"),
    (WILL_GET_BACK, "I'll check with my team and revert."),
    (ASK_DETAILS, "Which team would this be in?"),
    (NO_THANKS, "Appreciate it, but no thanks."),
    (INTRO_ACCEPTED, "Thanks for connecting us, I'll take it from here."),
    (REFERRAL_OK, "Sure, I can put in a word for you."),
    (SCHEDULE_CALL, "Send me an invite for whenever suits you."),
    (HAPPY_TO_HELP, "Anytime!"),
    (CONGRATS, "So happy for you!"),
    (CONFIRM_RECEIVED, "Noted, thanks."),
    (THANKS_FOR_REACHING_OUT, "Appreciate you reaching out."),
    (WELCOME, "My pleasure."),
    (OUT_OF_OFFICE, "I'm on leave until the 15th, will reply then."),
    (AGREE, "Good point, I hadn't thought of that."),
    (APOLOGISE_DELAY, "Sorry, crazy week over here."),
    (ALREADY_APPLIED, "I applied last week, fingers crossed."),
    (SEND_RESUME, "Please send your CV and I'll forward it."),
    (INTERESTED, "Sounds like a great opportunity."),
    (PROPOSE_TIME, "Would Friday at 2pm work?"),
    (YES, "Yep, that's right."),
    (THANKS, "Thanks a million!"),
    (WILL_REVIEW, "I'll go through the document and send comments."),
    (NOT_INTERESTED, "Thanks, but it's not a fit for me right now."),
    (ASK_SALARY, "Could you share the budget for the role?"),
    (FOLLOW_UP_LATER, "Let's circle back next month."),
    (ON_IT, "Working on it now."),
    (GREAT_TO_CONNECT, "Thanks for connecting!"),
    (SOUNDS_GOOD, "All good, thanks!"),
    (ASK_DETAILS, "What would the next steps be?"),
    (REFER_ELSEWHERE, "You might want to ask our recruiting team directly."),
    (CONGRATS, "Well done on the launch!"),
    (THANKS_FOR_CONGRATS, "Thanks, the team did all the hard work."),
    (CONFIRM_RECEIVED, "Thanks, I've got everything I need."),
    (SCHEDULE_CALL, "Let me send you a calendar invite."),
    (HAPPY_TO_HELP, "Glad I could help."),
    (RESUME_SENT, "I've attached my resume here."),
    (INTRO_ACCEPTED, "Lovely to be introduced, let's find a time."),
    (WILL_GET_BACK, "Give me a day or two."),
    (YES, "Count me in!"),
    (OUT_OF_OFFICE, "Currently out of office, I'll respond when I'm back."),
    (AGREE, "100% agree with this."),
    (NO_THANKS, "I'll have to decline, but good luck with the search."),
    (THANKS, "Much appreciated!"),
    (APOLOGISE_DELAY, "Apologies, only just seeing this."),
    (REFERRAL_OK, "I've submitted the referral, you should get an email soon."),
    (ASK_DETAILS, "Can you tell me more about the team?"),
    (PROPOSE_TIME, "Any chance we could meet next Wednesday?"),
    (INTERESTED, "Yes, I'm open to new opportunities."),
    (ALREADY_APPLIED, "I'm already in the process with your team."),
    (WELCOME, "No worries at all."),
    (SOUNDS_GOOD, "Brilliant, thank you."),
    (FOLLOW_UP_LATER, "Could you follow up in January?"),
    (ON_IT, "Will do."),
    (CONGRATS, "Congratulations on the promotion!"),
    (THANKS_FOR_REACHING_OUT, "Thanks for thinking of me."),
    (GREAT_TO_CONNECT, "Always happy to connect with people in the field."),
    (ASK_SALARY, "Is there flexibility on the salary?"),
    (CONFIRM_RECEIVED, "Thanks, confirmed on my side."),
    (REFER_ELSEWHERE, "My colleague handles this, I'll forward your message."),
    (SCHEDULE_CALL, "Happy to chat, my calendar is pretty open."),
    (THANKS, "Merci beaucoup !"),
    (THANKS, "Danke dir!"),
    (THANKS, "¡Muchas gracias!"),
    (THANKS, "ありがとうございます！"),
    (THANKS, "شكرا جزيلا"),
    (SOUNDS_GOOD, "Très bien, à bientôt."),
    (YES, "Claro que sí."),
    (NOT_INTERESTED, "Not for me, but I know someone who might be interested."),
    (WILL_REVIEW, "Let me digest this and come back to you."),
    (HAPPY_TO_HELP, "Sure thing, what do you need?"),
    (INTERESTED, "Keen to hear more!"),
    (APOLOGISE_DELAY, "Sorry for going quiet, things have been hectic."),
    (THANKS_FOR_CONGRATS, "Aw, thank you! Means a lot."),
    (OUT_OF_OFFICE, "I'm at a conference all week, can we talk next week?"),
    (ALREADY_APPLIED, "Thanks! I submitted my application yesterday."),
    (RESUME_SENT, "CV is on its way."),
    (INTRO_ACCEPTED, "Thanks for looping me in."),
];

/// Kinds of opening messages; [`opening`] returns an index into this list (the groups of the opening bodies).
pub const MESSAGE_KINDS: &[&str] = &[
    "recruiter_outreach",
    "referral_request",
    "event_follow_up",
    "job_question",
    "collaboration",
    "congratulations",
    "introduction",
    "follow_up",
    "networking",
];

/// Indices into [`MESSAGE_KINDS`].
mod kind {
    pub const RECRUITER: u16 = 0;
    pub const REFERRAL: u16 = 1;
    pub const EVENT: u16 = 2;
    pub const JOB_QUESTION: u16 = 3;
    pub const COLLABORATION: u16 = 4;
    pub const CONGRATULATIONS: u16 = 5;
    pub const INTRODUCTION: u16 = 6;
    pub const FOLLOW_UP: u16 = 7;
    pub const NETWORKING: u16 = 8;
}

/// Share of replies drawn from the message-independent inventory distribution (people answer "Thanks!" or
/// "Sounds good!" to nearly anything); the rest follow the message replied to.
pub const GENERIC_REPLY_SHARE: f64 = 0.15;

/// What a reply's intent is drawn conditional on: the kind of the opening it answers, or the intent of the reply it
/// answers. The `messages_truth` table records, per message, what a reply to it conditions on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReplyCondition {
    /// Answering an opening message of this kind (an index into [`MESSAGE_KINDS`]).
    Opening(u16),
    /// Answering a reply of this intent (an index into [`INTENTS`]).
    Reply(u16),
}

impl ReplyCondition {
    /// The condition a `messages_truth` row names (`kind` is `opening` or `reply`, `label` a kind or intent name).
    pub fn from_truth(kind: &str, label: &str) -> Option<ReplyCondition> {
        let find = |list: &[&str]| list.iter().position(|x| *x == label).and_then(|i| u16::try_from(i).ok());
        match kind {
            "opening" => find(MESSAGE_KINDS).map(ReplyCondition::Opening),
            "reply" => find(INTENTS).map(ReplyCondition::Reply),
            _ => None,
        }
    }

    /// The `(kind, label)` pair written to `messages_truth`.
    pub fn truth(self) -> (&'static str, &'static str) {
        match self {
            ReplyCondition::Opening(k) => ("opening", MESSAGE_KINDS.get(usize::from(k)).copied().unwrap_or("")),
            ReplyCondition::Reply(i) => ("reply", INTENTS.get(usize::from(i)).copied().unwrap_or("")),
        }
    }
}

/// Intent weights of a reply to an opening, per kind (what people answer to each kind of message).
const OPENING_INTENTS: [&[(u16, u32)]; 9] = [
    // Recruiter outreach.
    &[
        (INTERESTED, 25),
        (NOT_INTERESTED, 18),
        (THANKS_FOR_REACHING_OUT, 14),
        (ASK_DETAILS, 10),
        (ASK_SALARY, 8),
        (SCHEDULE_CALL, 8),
        (SEND_RESUME, 6),
        (NO_THANKS, 6),
        (ALREADY_APPLIED, 2),
        (OUT_OF_OFFICE, 2),
        (APOLOGISE_DELAY, 1),
    ],
    // Referral request.
    &[
        (REFERRAL_OK, 25),
        (SEND_RESUME, 15),
        (REFER_ELSEWHERE, 15),
        (HAPPY_TO_HELP, 10),
        (ASK_DETAILS, 8),
        (WILL_GET_BACK, 8),
        (NO_THANKS, 6),
        (SCHEDULE_CALL, 5),
        (APOLOGISE_DELAY, 3),
        (OUT_OF_OFFICE, 2),
    ],
    // Networking after an event.
    &[
        (GREAT_TO_CONNECT, 30),
        (THANKS, 12),
        (SOUNDS_GOOD, 12),
        (SCHEDULE_CALL, 10),
        (AGREE, 8),
        (THANKS_FOR_REACHING_OUT, 8),
        (PROPOSE_TIME, 6),
        (WELCOME, 6),
        (HAPPY_TO_HELP, 4),
    ],
    // Job question.
    &[
        (HAPPY_TO_HELP, 28),
        (SCHEDULE_CALL, 15),
        (WILL_GET_BACK, 10),
        (ASK_DETAILS, 8),
        (REFER_ELSEWHERE, 8),
        (YES, 8),
        (PROPOSE_TIME, 6),
        (APOLOGISE_DELAY, 4),
        (OUT_OF_OFFICE, 3),
        (NO_THANKS, 3),
    ],
    // Collaboration.
    &[
        (INTERESTED, 20),
        (SCHEDULE_CALL, 15),
        (ASK_DETAILS, 12),
        (WILL_REVIEW, 10),
        (NO_THANKS, 10),
        (YES, 8),
        (WILL_GET_BACK, 8),
        (FOLLOW_UP_LATER, 8),
        (OUT_OF_OFFICE, 3),
    ],
    // Congratulations.
    &[(THANKS_FOR_CONGRATS, 55), (THANKS, 30), (GREAT_TO_CONNECT, 3), (APOLOGISE_DELAY, 2)],
    // Introduction.
    &[
        (INTRO_ACCEPTED, 35),
        (GREAT_TO_CONNECT, 25),
        (SCHEDULE_CALL, 12),
        (THANKS, 8),
        (PROPOSE_TIME, 6),
        (SOUNDS_GOOD, 6),
        (FOLLOW_UP_LATER, 3),
    ],
    // Follow-up.
    &[
        (APOLOGISE_DELAY, 25),
        (WILL_GET_BACK, 15),
        (CONFIRM_RECEIVED, 12),
        (WILL_REVIEW, 10),
        (FOLLOW_UP_LATER, 10),
        (NOT_INTERESTED, 8),
        (ON_IT, 6),
        (THANKS, 6),
        (OUT_OF_OFFICE, 4),
    ],
    // Networking.
    &[
        (GREAT_TO_CONNECT, 35),
        (THANKS_FOR_REACHING_OUT, 12),
        (AGREE, 10),
        (HAPPY_TO_HELP, 10),
        (YES, 8),
        (SOUNDS_GOOD, 8),
        (SCHEDULE_CALL, 6),
        (THANKS, 6),
    ],
];

/// Intent weights of a reply to a reply, per intent of the reply answered (in [`INTENTS`] order): a request for a CV
/// is answered by sending it, a proposed time by accepting it, thanks by "you're welcome", …
const FOLLOW_INTENTS: [&[(u16, u32)]; 30] = [
    // thanks
    &[(WELCOME, 45), (HAPPY_TO_HELP, 25), (SOUNDS_GOOD, 15)],
    // thanks_for_reaching_out
    &[(SCHEDULE_CALL, 30), (PROPOSE_TIME, 15), (SEND_RESUME, 15), (WELCOME, 15), (ASK_DETAILS, 5)],
    // sounds_good
    &[(THANKS, 30), (SOUNDS_GOOD, 15), (GREAT_TO_CONNECT, 10), (CONFIRM_RECEIVED, 10), (PROPOSE_TIME, 10)],
    // will_review
    &[(THANKS, 45), (SOUNDS_GOOD, 25), (FOLLOW_UP_LATER, 10), (WELCOME, 5)],
    // will_get_back
    &[(SOUNDS_GOOD, 40), (THANKS, 30), (FOLLOW_UP_LATER, 10)],
    // schedule_call
    &[(PROPOSE_TIME, 55), (YES, 15), (SOUNDS_GOOD, 15)],
    // propose_time
    &[(YES, 40), (SOUNDS_GOOD, 30), (PROPOSE_TIME, 10), (CONFIRM_RECEIVED, 5)],
    // interested
    &[(SCHEDULE_CALL, 35), (SEND_RESUME, 20), (PROPOSE_TIME, 15), (THANKS, 10)],
    // not_interested
    &[(WELCOME, 35), (THANKS, 20), (FOLLOW_UP_LATER, 20), (SOUNDS_GOOD, 10)],
    // no_thanks
    &[(WELCOME, 40), (THANKS, 25), (SOUNDS_GOOD, 15)],
    // congrats
    &[(THANKS_FOR_CONGRATS, 70), (THANKS, 25)],
    // thanks_for_congrats
    &[(WELCOME, 55), (THANKS, 10), (SOUNDS_GOOD, 10)],
    // send_resume
    &[(RESUME_SENT, 65), (ON_IT, 10), (YES, 10)],
    // resume_sent
    &[(CONFIRM_RECEIVED, 50), (THANKS, 25), (WILL_REVIEW, 15)],
    // follow_up_later
    &[(SOUNDS_GOOD, 50), (YES, 20), (THANKS, 15)],
    // yes
    &[(SOUNDS_GOOD, 35), (THANKS, 25), (SCHEDULE_CALL, 15), (CONFIRM_RECEIVED, 10)],
    // agree
    &[(THANKS, 30), (AGREE, 30), (SOUNDS_GOOD, 15)],
    // happy_to_help
    &[(THANKS, 60), (SOUNDS_GOOD, 15)],
    // ask_details
    &[(WILL_GET_BACK, 35), (SCHEDULE_CALL, 30), (ON_IT, 10)],
    // apologise_delay
    &[(WELCOME, 50), (SOUNDS_GOOD, 15), (THANKS, 10)],
    // great_to_connect
    &[(GREAT_TO_CONNECT, 35), (THANKS, 25), (SCHEDULE_CALL, 10)],
    // intro_accepted
    &[(PROPOSE_TIME, 35), (SCHEDULE_CALL, 25), (GREAT_TO_CONNECT, 20)],
    // referral_ok
    &[(THANKS, 50), (RESUME_SENT, 25)],
    // refer_elsewhere
    &[(THANKS, 55), (YES, 15)],
    // already_applied
    &[(SOUNDS_GOOD, 25), (WILL_GET_BACK, 20), (ON_IT, 15), (THANKS, 10)],
    // out_of_office
    &[(FOLLOW_UP_LATER, 30), (SOUNDS_GOOD, 30), (WELCOME, 15)],
    // on_it
    &[(THANKS, 60), (SOUNDS_GOOD, 20)],
    // confirm_received
    &[(THANKS, 30), (SOUNDS_GOOD, 25), (WELCOME, 20)],
    // ask_salary
    &[(WILL_GET_BACK, 40), (SCHEDULE_CALL, 30)],
    // welcome
    &[(THANKS, 30), (SOUNDS_GOOD, 30), (GREAT_TO_CONNECT, 15)],
];

/// The intent weights a condition draws from (empty for an unknown kind or intent: then every reply is generic).
fn specific_intents(cond: ReplyCondition) -> &'static [(u16, u32)] {
    match cond {
        ReplyCondition::Opening(k) => OPENING_INTENTS.get(usize::from(k)).copied().unwrap_or(&[]),
        ReplyCondition::Reply(i) => FOLLOW_INTENTS.get(usize::from(i)).copied().unwrap_or(&[]),
    }
}

/// Weight of the inventory reply at popularity rank `rank` (0-based): the Zipf–Mandelbrot law of [`zipf_rank`].
fn zipf_weight(rank: usize) -> f64 {
    (rank as f64 + 3.0).powf(-1.1)
}

/// P(reply text | condition) for every inventory reply, in inventory order: `(intent, text, probability)`, summing
/// to 1. With probability [`GENERIC_REPLY_SHARE`] the text is drawn from the whole inventory by popularity; otherwise
/// its intent is drawn from the condition's weights and the text within the intent by popularity (so every intent
/// keeps its long tail of phrasings). This is the exact law [`reply_to`] samples: the reply oracle.
pub fn reply_distribution(cond: ReplyCondition) -> Vec<(u16, &'static str, f64)> {
    let weights: Vec<f64> = (0..REPLIES.len()).map(zipf_weight).collect();
    let total: f64 = weights.iter().sum();
    let mut per_intent = vec![0.0; INTENTS.len()];
    for (&(intent, _), w) in REPLIES.iter().zip(&weights) {
        if let Some(p) = per_intent.get_mut(usize::from(intent)) {
            *p += w;
        }
    }
    let specific = specific_intents(cond);
    let specific_total: u32 = specific.iter().map(|(_, w)| w).sum();
    let generic = if specific_total == 0 { 1.0 } else { GENERIC_REPLY_SHARE };
    REPLIES
        .iter()
        .zip(&weights)
        .map(|(&(intent, text), &w)| {
            let mut p = generic * w / total;
            let share: u32 = specific.iter().filter(|(i, _)| *i == intent).map(|(_, w)| w).sum();
            let within = per_intent.get(usize::from(intent)).copied().unwrap_or(0.0);
            if share > 0 && within > 0.0 {
                p += (1.0 - generic) * f64::from(share) / f64::from(specific_total) * w / within;
            }
            (intent, text, p)
        })
        .collect()
}

/// P(intent | condition), indexed by [`INTENTS`]: the true distribution of reply intents given the message replied
/// to, for benchmarks (the oracle a reply ranker is measured against).
pub fn reply_intent_distribution(cond: ReplyCondition) -> Vec<f64> {
    let mut out = vec![0.0; INTENTS.len()];
    for (intent, _, p) in reply_distribution(cond) {
        if let Some(o) = out.get_mut(usize::from(intent)) {
            *o += p;
        }
    }
    out
}

/// Cumulative [`reply_distribution`] per condition, computed once (the network draws hundreds of thousands).
fn cumulative(cond: ReplyCondition) -> &'static [f64] {
    static TABLES: std::sync::OnceLock<Vec<Vec<f64>>> = std::sync::OnceLock::new();
    let tables = TABLES.get_or_init(|| {
        let conds = (0..MESSAGE_KINDS.len() as u16)
            .map(ReplyCondition::Opening)
            .chain((0..INTENTS.len() as u16).map(ReplyCondition::Reply));
        conds
            .map(|c| {
                let mut acc = 0.0;
                reply_distribution(c)
                    .into_iter()
                    .map(|(_, _, p)| {
                        acc += p;
                        acc
                    })
                    .collect()
            })
            .collect()
    });
    let at = match cond {
        ReplyCondition::Opening(k) => usize::from(k),
        ReplyCondition::Reply(i) => MESSAGE_KINDS.len() + usize::from(i),
    };
    tables.get(at).map(Vec::as_slice).unwrap_or(&[])
}

/// Reply by `ctx.recipient` to `ctx.sender` to a message with condition `cond`: an intent index into [`INTENTS`] and
/// the reply text, drawn from [`reply_distribution`] and then varied and addressed as [`reply`] does.
pub fn reply_to<R: Rng + ?Sized>(rng: &mut R, ctx: &MessageContext, cond: ReplyCondition) -> (u16, Text) {
    let x: f64 = rng.random();
    let cum = cumulative(cond);
    let at = cum.iter().position(|&c| x < c).unwrap_or_else(|| cum.len().saturating_sub(1));
    let (intent, base) = match REPLIES.get(at) {
        Some(&r) if !cum.is_empty() => r,
        // An unknown condition: the generic draw.
        _ => REPLIES.get(zipf_rank(rng, REPLIES.len())).copied().unwrap_or((THANKS, "Thanks!")),
    };
    (intent, dress_reply(rng, ctx, base))
}

const GREETINGS: &[(u32, &str)] = &[
    (20, "Hi {YOU},"),
    (10, "Hello {YOU},"),
    (8, "Hi {YOU}!"),
    (6, "Dear {YOU_FULL},"),
    (5, "Hey {YOU},"),
    (4, "Hello {YOU_FULL},"),
    (3, "Good morning {YOU},"),
    (3, "Hi there,"),
    (2, "Hey {YOU}!"),
    (2, "Hallo {YOU},"),
    (2, "Bonjour {YOU},"),
    (2, "Hola {YOU},"),
    (1, "Ciao {YOU},"),
    (1, "Hej {YOU}!"),
    (1, "Olá {YOU}!"),
    (1, "こんにちは、{YOU}さん。"),
    (1, "مرحبا {YOU}،"),
    (1, "안녕하세요 {YOU}님,"),
    (1, "你好 {YOU}，"),
    (1, "Привет, {YOU}!"),
    (1, "Good afternoon {YOU_FULL},"),
    (1, "{YOU},"),
    (1, "Greetings {YOU},"),
];

/// First-message bodies, each with its kind (an index into [`MESSAGE_KINDS`]): recruiter outreach, referrals,
/// events, job questions, collaboration, congratulations, introductions, follow-ups, networking.
const BODIES: &[(u16, &str)] = &[
    // Recruiter outreach
    (
        kind::RECRUITER,
        "I'm {A_TITLE} at {COMPANY} and came across your profile while looking for {A_ROLE}. Your background in {INDUSTRY} really stood out. Would you be open to a quick chat this {DAY}?",
    ),
    (
        kind::RECRUITER,
        "We're growing the {TEAM} team at {COMPANY} and I think your experience could be a great fit for {A_ROLE} opening. The role is {WORKMODE} and the team is small but very senior. Interested in hearing more?",
    ),
    (
        kind::RECRUITER,
        "Hope you're well! I'm recruiting for {A_ROLE} position with one of our clients in {INDUSTRY}. Compensation is competitive and it's {WORKMODE}. Let me know if you'd like the details.",
    ),
    (
        kind::RECRUITER,
        "Quick one: are you open to new opportunities at the moment? {COMPANY} is hiring {A_ROLE} and your profile matches almost everything on the spec.",
    ),
    // Referral requests
    (
        kind::REFERRAL,
        "I noticed you work at {OTHER_CO}. I'm applying for the {ROLE} role there and wondered if you'd be comfortable referring me, or sharing what the team is like. Happy to send my CV first.",
    ),
    (
        kind::REFERRAL,
        "I hope this isn't too forward, but I saw an opening for {A_ROLE} at your company and would really value a referral. I've spent the last {N} years in {INDUSTRY}, most recently as {A_TITLE}.",
    ),
    (
        kind::REFERRAL,
        "Would you be willing to put in a word for me for the {ROLE} position? I completely understand if not, and thanks either way.",
    ),
    // Networking after events
    (
        kind::EVENT,
        "It was great meeting you at {EVENT}! I really enjoyed our conversation about {KW}. Let's stay in touch.",
    ),
    (
        kind::EVENT,
        "Thanks for your talk at {EVENT}. The part about {KW} was spot on, and I'd love to hear more about how your team approaches it.",
    ),
    (
        kind::EVENT,
        "We spoke briefly after the panel at {EVENT}. I'm the {TITLE} from {COMPANY} who asked about {KW}. Would be great to continue the conversation over coffee.",
    ),
    // Job questions
    (
        kind::JOB_QUESTION,
        "I'm considering a move into {INDUSTRY} and saw that you made a similar switch. Would you have 15 minutes to share how you approached it?",
    ),
    (
        kind::JOB_QUESTION,
        "I'm interviewing for {A_ROLE} role next week and noticed you've done that job for a while. Any tips on what the interviewers usually focus on?",
    ),
    (
        kind::JOB_QUESTION,
        "Could I ask what a typical day looks like for {A_ROLE} at your company? I'm trying to decide between two offers.",
    ),
    (
        kind::JOB_QUESTION,
        "Is the {ROLE} opening on your careers page still active? The link seems to be broken on my side.",
    ),
    // Collaboration
    (
        kind::COLLABORATION,
        "I'm working on a side project around {KW} and think your experience in {INDUSTRY} would be invaluable. Would you be open to collaborating, or at least giving feedback on an early draft?",
    ),
    (
        kind::COLLABORATION,
        "At {COMPANY} we're putting together a webinar on {TOPIC} for {MONTH} and we're looking for one more speaker. Would you be interested?",
    ),
    (
        kind::COLLABORATION,
        "I'm writing an article about {KW} in {INDUSTRY} and would love to quote you. It would only take 20 minutes of your time.",
    ),
    (
        kind::COLLABORATION,
        "Our teams seem to be tackling similar problems around {KW}. Would you be up for a call to compare notes?",
    ),
    // Congratulations
    (kind::CONGRATULATIONS, "Congratulations on the new role at {OTHER_CO}! They're lucky to have you."),
    (kind::CONGRATULATIONS, "Just saw the news about your promotion. Well deserved, congrats!"),
    (kind::CONGRATULATIONS, "Congrats on your work anniversary! {N} years already, time flies."),
    (kind::CONGRATULATIONS, "Huge congratulations on the launch last week. The work on {KW} looks fantastic."),
    // Introductions
    (
        kind::INTRODUCTION,
        "{THEM_CUE_CAP} suggested I get in touch. I'm {A_TITLE} at {COMPANY}, focused on {KW}, and {THEM} thought we'd have a lot to talk about.",
    ),
    (
        kind::INTRODUCTION,
        "I'd like to introduce you to {THEM_FULL}, who is leading the {KW} work at {OTHER_CO}. I think you two should talk, so I'll let {THEM} take it from here.",
    ),
    (
        kind::INTRODUCTION,
        "Allow me to introduce myself: I'm {ME_FULL}, {A_TITLE} working in {INDUSTRY}. I've followed your posts on {TOPIC} for a while and wanted to connect.",
    ),
    // Follow-ups
    (
        kind::FOLLOW_UP,
        "Just following up on my message from last {DAY}. No pressure at all, I know how busy things get.",
    ),
    (kind::FOLLOW_UP, "Circling back on the {ROLE} opportunity. Did you get a chance to think it over?"),
    (
        kind::FOLLOW_UP,
        "Following up on our call: I've attached the notes and the next steps we agreed on. Let me know if I missed anything.",
    ),
    (
        kind::FOLLOW_UP,
        "Bumping this to the top of your inbox in case it got buried. Would love your thoughts on {KW} when you have a moment.",
    ),
    // Networking
    (
        kind::NETWORKING,
        "I'd love to add you to my network. I'm {A_TITLE} and always happy to connect with people working on {TOPIC}.",
    ),
    (
        kind::NETWORKING,
        "Are you still organising the {TOPIC} meetup in {CITY}? I'd be happy to help with the venue or speakers.",
    ),
    (
        kind::NETWORKING,
        "I saw your comment on {KW} and it resonated with me. How did your team convince leadership to invest in it?",
    ),
];

/// Sentences that name-drop a third person.
const MENTIONS: &[&str] = &[
    "{THEM_CUE_CAP} suggested I reach out to you.",
    "By the way, {THEM_CUE} says hello!",
    "I was chatting with {THEM_CUE} about this last week and your name came up.",
    "I've also copied in {THEM_CUE}, who knows the details better than I do.",
    "{THEM_CUE_CAP} speaks very highly of you.",
    "{THEM_FULL} mentioned you might be the right person to ask.",
];

/// Ways to refer to a third person; the name parts are planted, the cue words are not.
const CUES: &[&str] = &[
    "my colleague {THEM_FULL}",
    "my colleague {THEM}",
    "Dr. {THEM_SUR}",
    "Dr. {THEM_FULL}",
    "Ms {THEM_SUR}",
    "Mr. {THEM_SUR}",
    "Prof. {THEM_FULL}",
    "our mutual friend {THEM_FULL}",
    "{THEM_FULL} from {OTHER_CO}",
    "my former manager {THEM_FULL}",
    "{THEM}",
];

const EMAIL_SENTENCES: &[&str] = &[
    "You can reach me at {EMAIL}.",
    "Feel free to email me directly at {EMAIL}.",
    "My personal email is {EMAIL} if that's easier.",
    "Please send your CV to {EMAIL}.",
    "{THEM}'s email is {THEM_EMAIL}, in case you want to contact them directly.",
    "Could you send the details to {EMAIL}? Messages here sometimes get lost.",
];
const PHONE_SENTENCES: &[&str] = &[
    "My number is {PHONE}.",
    "Feel free to call me on {PHONE}.",
    "You can also reach me on WhatsApp at {PHONE}.",
    "The best number to reach me is {PHONE} (weekdays after 10).",
    "Text me at {PHONE} if that's easier.",
];
const URL_SENTENCES: &[&str] = &[
    "My portfolio is at {URL} if you want to take a look.",
    "Here's the job description: {URL}.",
    "Some of my recent work: {URL}",
    "I wrote about this recently ({URL}) and would value your opinion.",
    "You can book a slot directly here: {URL}",
    "More about me: {URL}",
];
const ADDRESS_SENTENCES: &[&str] = &[
    "Our office is at {ADDRESS}, in case you'd like to drop by.",
    "If you want to send the signed contract by post, my address is {ADDRESS}.",
    "The meetup is at {ADDRESS}, doors open at 6.",
    "Could you ship the equipment to {ADDRESS}?",
];
const IP_SENTENCES: &[&str] = &[
    "The staging server is at {IP} if you want to try the demo.",
    "I think the login issue comes from {IP}, could you whitelist it?",
    "Our VPN exit node is {IP}; could you add it to the allowlist?",
];
const CARD_SENTENCES: &[&str] = &[
    "For the workshop fee you can charge my card {CC}, expiry {EXPIRY}.",
    "I tried paying with {CC} but the checkout failed. Any idea why?",
];
const IBAN_SENTENCES: &[&str] = &[
    "Please transfer the deposit to my account {IBAN}.",
    "Our invoice details: IBAN {IBAN}, reference INV-{N4}.",
    "For the reimbursement, my IBAN is {IBAN}.",
];
const SSN_SENTENCES: &[&str] = &[
    "For the background check form, my SSN is {SSN}.",
    "HR asked for my social security number, it's {SSN}. Is it safe to send it here?",
];

const EMAIL_SIGNATURES: &[&str] = &["{EMAIL}", "Email: {EMAIL}", "e: {EMAIL}"];
const PHONE_SIGNATURES: &[&str] = &["{PHONE}", "Mobile: {PHONE}", "Tel. {PHONE}", "M: {PHONE}", "Phone: {PHONE}"];
const URL_SIGNATURES: &[&str] = &["{URL}", "Portfolio: {URL}", "Web: {URL}"];

const SIGN_OFFS: &[&str] = &[
    "Best,",
    "Best,",
    "Best regards,",
    "Kind regards,",
    "Thanks,",
    "Cheers,",
    "Regards,",
    "Many thanks,",
    "All the best,",
    "Warm regards,",
    "Viele Grüße,",
    "Cordialement,",
    "Saludos,",
];

const CLOSERS: &[&str] = &[
    "",
    "",
    "Thanks!",
    "Cheers!",
    "Thanks in advance.",
    "Looking forward to hearing from you.",
    "Have a great week!",
    "Best wishes.",
    "Thank you!",
];

/// Relative frequencies of non-name PII kinds in first messages.
const MESSAGE_PII: &[(PiiKind, u32)] = &[
    (PiiKind::Email, 32),
    (PiiKind::Phone, 26),
    (PiiKind::Url, 22),
    (PiiKind::Address, 10),
    (PiiKind::Ip, 3),
    (PiiKind::CreditCard, 2),
    (PiiKind::Iban, 3),
    (PiiKind::Ssn, 2),
];

/// Share of first messages that carry at least one non-name PII item.
const MESSAGE_PII_RATE: f64 = 0.41;

const ROLES: &[&str] = &[
    "Senior Data Engineer",
    "Product Manager",
    "Engineering Manager",
    "UX Designer",
    "Account Executive",
    "Head of Marketing",
    "Financial Analyst",
    "DevOps Engineer",
    "Machine Learning Engineer",
    "Staff Software Engineer",
    "Customer Success Manager",
    "Talent Partner",
    "Data Scientist",
    "Frontend Developer",
    "Backend Engineer",
    "Solutions Architect",
    "Operations Lead",
    "HR Business Partner",
    "Supply Chain Analyst",
    "Clinical Research Associate",
    "Security Analyst",
    "Content Strategist",
    "Sales Development Representative",
    "Project Manager",
    "QA Engineer",
    "Business Analyst",
    "Chief of Staff",
    "Growth Marketer",
    "Mobile Developer",
    "Site Reliability Engineer",
];
const EVENTS: &[&str] = &[
    "last week's meetup",
    "the industry breakfast",
    "the career fair",
    "the hackathon",
    "the DataConf panel",
    "the product summit",
    "the alumni dinner",
    "the leadership offsite",
    "Thursday's webinar",
    "TechWeek",
    "the networking evening",
    "the Lisbon conference",
    "the Berlin summit",
];
const DAYS: &[&str] = &["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "week"];
const MONTHS: &[&str] =
    &["January", "February", "March", "April", "May", "June", "September", "October", "November", "December"];
const CITIES: &[&str] = &[
    "London",
    "Berlin",
    "Amsterdam",
    "Paris",
    "Madrid",
    "Milan",
    "Dublin",
    "Zürich",
    "Bengaluru",
    "São Paulo",
    "Tokyo",
    "Sydney",
    "Singapore",
    "Toronto",
    "New York",
    "Austin",
    "Kraków",
    "München",
    "Köln",
];
const WORKMODES: &[&str] =
    &["fully remote", "hybrid", "remote-first", "on-site", "remote within Europe", "hybrid (two days in the office)"];
const TEAMS: &[&str] = &[
    "platform",
    "data",
    "growth",
    "design",
    "sales",
    "security",
    "finance",
    "customer success",
    "infrastructure",
    "research",
];

const POST_OPENERS: &[&str] = &[
    "Excited to share that our team at {COMPANY} just wrapped up a big project on {KW}!",
    "I've been thinking a lot about {TOPIC} lately.",
    "Hot take: {KW} matters more than most people think.",
    "After {N} years as {A_TITLE}, here's what I've learned about {KW}.",
    "Spent the morning at a workshop on {KW} and my head is still buzzing.",
    "Three lessons from our latest work on {KW}.",
    "Question for my network: how is your team handling {KW}?",
    "We're hiring! Looking for people who care about {KW}.",
    "Proud of the team for what we achieved on {KW} this quarter.",
    "Unpopular opinion: most conversations about {TOPIC} miss the point.",
    "Just got back from {EVENT}, where {KW} was the talk of the day.",
    "Today marks {N} years since I started working in {INDUSTRY}.",
    "Reflecting on a year of {KW} at {COMPANY}.",
    "A short thread on {KW}, because I keep getting asked about it.",
    "Grateful for everyone who joined our session on {TOPIC} yesterday.",
];
const POST_MIDDLES: &[&str] = &[
    "The biggest surprise was how much {KW} depends on {KW2}.",
    "In {INDUSTRY}, {KW} is no longer optional.",
    "If you're not paying attention to {KW2}, you're guessing.",
    "Small teams can move fast on {KW} when leadership gives them room.",
    "{PCT}% of the people we spoke to said {KW2} was their top priority this year.",
    "The hard part isn't the technology, it's the people and the process.",
    "We started small, measured everything, and only then scaled up.",
    "What worked for us: fewer meetings, clearer goals, and honest retros.",
    "It took us {N} attempts to get {KW2} right, and every failure taught us something.",
    "The best advice I got was to focus on {KW2} before anything else.",
    "Nobody talks about how lonely {KW} can feel at the start.",
    "Our customers noticed the difference within weeks.",
];
const POST_CLOSERS: &[&str] = &[
    "What's your take?",
    "Would love to hear how others approach this.",
    "Agree or disagree?",
    "More thoughts soon.",
    "Onwards!",
    "Curious what you all think.",
    "Let's keep the conversation going in the comments.",
    "Happy to share more details if anyone is interested.",
];
/// Rare non-English closers, so post text exercises multi-byte UTF-8.
const POST_CLOSERS_INTL: &[&str] = &[
    "Grüße aus München!",
    "Merci à toute l'équipe !",
    "ありがとうございました！",
    "¡Vamos!",
    "شكراً لكم",
    "Spasibo! Спасибо!",
];

/// Relative frequencies of PII kinds in posts.
const POST_PII: &[(PiiKind, u32)] =
    &[(PiiKind::Url, 55), (PiiKind::Person, 25), (PiiKind::Email, 14), (PiiKind::Phone, 6)];
/// Share of posts that carry PII beyond hashtags and topic words.
const POST_PII_RATE: f64 = 0.15;

const POST_URL_SENTENCES: &[&str] = &[
    "Full write-up here: {URL}",
    "Slides are available at {URL}.",
    "Apply here: {URL}",
    "I wrote more about it on my blog: {URL}",
    "Recording: {URL}",
    "Details and registration at {URL}.",
];
const POST_EMAIL_SENTENCES: &[&str] = &[
    "If you'd like to get involved, drop me a line at {EMAIL}.",
    "Interested? Send your CV to {EMAIL}.",
    "Questions welcome at {EMAIL}.",
];
const POST_PERSON_SENTENCES: &[&str] = &[
    "Thanks to my colleague {THEM_FULL} for the brilliant idea.",
    "Huge shout-out to {THEM_FULL} for leading this.",
    "None of this would have happened without {THEM_CUE}.",
    "Special thanks to {THEM_CUE} for the feedback on early drafts.",
    "Great chatting with {THEM_FULL} about this at {EVENT}.",
];
const POST_PHONE_SENTENCES: &[&str] = &["Questions? Call me on {PHONE}.", "For partnership enquiries call {PHONE}."];

/// Sentences a replier adds to share contact details.
const REPLY_CONTACT: &[&str] = &[
    "You can reach me at {PHONE}.",
    "My number is {PHONE} if that's easier.",
    "Best to email me at {EMAIL}.",
    "Drop me a line at {EMAIL}.",
    "Call me on {PHONE} whenever suits.",
    "My email is {EMAIL}.",
];

/// Everything a template can refer to while it is rendered.
struct Scene<'a> {
    /// Author of the text.
    me: Person<'a>,
    /// Addressee of the text.
    you: Person<'a>,
    /// A third person who may be name-dropped.
    them: Person<'a>,
    country: &'a str,
    title: &'a str,
    industry: &'a str,
    company: &'a str,
    topic: &'static str,
    kw: [&'static str; 2],
}

impl<'a> Scene<'a> {
    fn new<R: Rng + ?Sized>(
        rng: &mut R,
        ctx: &MessageContext<'a>,
        me: Person<'a>,
        you: Person<'a>,
        topic: usize,
    ) -> Scene<'a> {
        let them = if rng.random_bool(0.55) && !ctx.mentioned.given.trim().is_empty() {
            ctx.mentioned
        } else {
            Person { given: pick(rng, names::GIVEN_NAMES), surname: pick(rng, names::SURNAMES) }
        };
        let topic = topic % TOPICS.len();
        let kws = VOCAB.get(topic).map(|(k, _)| *k).unwrap_or_default();
        let kw = if kws.len() >= 2 {
            let i = rng.random_range(0..kws.len());
            let j = (i + rng.random_range(1..kws.len())) % kws.len();
            [kws[i], kws[j]]
        } else {
            let t = TOPICS.get(topic).copied().unwrap_or("work");
            [t, t]
        };
        Scene {
            me,
            you,
            them,
            country: ctx.sender_country,
            title: non_empty(ctx.sender_title, "professional"),
            industry: non_empty(ctx.sender_industry, "this industry"),
            company: non_empty(ctx.company, "my company"),
            topic: TOPICS.get(topic).copied().unwrap_or("work"),
            kw,
        }
    }
}

fn non_empty<'a>(s: &'a str, fallback: &'a str) -> &'a str {
    if s.trim().is_empty() { fallback } else { s.trim() }
}

/// The name to use when addressing someone by first name (surname if the given name is missing).
fn short_name<'a>(p: &Person<'a>) -> &'a str {
    if p.given.trim().is_empty() { p.surname.trim() } else { p.given.trim() }
}

fn surname_or_given<'a>(p: &Person<'a>) -> &'a str {
    if p.surname.trim().is_empty() { p.given.trim() } else { p.surname.trim() }
}

fn full_name(p: &Person<'_>) -> String {
    match (p.given.trim(), p.surname.trim()) {
        ("", s) => s.to_owned(),
        (g, "") => g.to_owned(),
        (g, s) => format!("{g} {s}"),
    }
}

/// `a` or `an` for a noun phrase (handles acronyms such as "UX Designer").
fn article(word: &str) -> &'static str {
    let mut chars = word.chars();
    let first = chars.next().unwrap_or('x');
    let second = chars.next().unwrap_or('x');
    match first {
        'A' | 'E' | 'I' | 'O' | 'a' | 'e' | 'i' | 'o' => "an",
        'U' if second.is_ascii_uppercase() => "a",
        'U' | 'u' if word.starts_with("Uni") || word.starts_with("uni") || word.starts_with("Us") => "a",
        'U' | 'u' => "an",
        _ => "a",
    }
}

/// Upper-cases the first character of a template (used when a cue starts a sentence).
fn capitalize_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn pick_weighted<R: Rng + ?Sized>(rng: &mut R, items: &[(u32, &'static str)]) -> &'static str {
    let weights: Vec<u32> = items.iter().map(|(w, _)| *w).collect();
    items.get(weighted(rng, &weights)).map(|(_, s)| *s).unwrap_or("")
}

/// Picks one template from `list` and renders it.
fn render_pick<R: Rng + ?Sized>(rng: &mut R, out: &mut Text, list: &[&'static str], sc: &Scene<'_>) {
    let tpl = pick(rng, list);
    render(rng, out, tpl, sc);
}

/// Renders a `{SLOT}` template into `out`, planting PII for person and PII slots.
fn render<R: Rng + ?Sized>(rng: &mut R, out: &mut Text, tpl: &str, sc: &Scene<'_>) {
    let mut rest = tpl;
    while let Some(open) = rest.find('{') {
        out.push(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push(&rest[open..]);
            return;
        };
        slot(rng, out, &after[..close], sc);
        rest = &after[close + 1..];
    }
    out.push(rest);
}

fn slot<R: Rng + ?Sized>(rng: &mut R, out: &mut Text, name: &str, sc: &Scene<'_>) {
    use PiiKind as K;
    match name {
        "YOU" => out.push_pii(K::Person, short_name(&sc.you)),
        "YOU_FULL" => out.push_pii(K::Person, &full_name(&sc.you)),
        "ME" => out.push_pii(K::Person, short_name(&sc.me)),
        "ME_FULL" => out.push_pii(K::Person, &full_name(&sc.me)),
        "THEM" => out.push_pii(K::Person, short_name(&sc.them)),
        "THEM_FULL" => out.push_pii(K::Person, &full_name(&sc.them)),
        "THEM_SUR" => out.push_pii(K::Person, surname_or_given(&sc.them)),
        "THEM_CUE" => {
            let cue = pick(rng, CUES);
            render(rng, out, cue, sc);
        }
        "THEM_CUE_CAP" => {
            let cue = capitalize_first(pick(rng, CUES));
            render(rng, out, &cue, sc);
        }
        "TITLE" => out.push(sc.title),
        "A_TITLE" => {
            out.push(article(sc.title));
            out.push(" ");
            out.push(sc.title);
        }
        "INDUSTRY" => out.push(sc.industry),
        "COMPANY" => out.push(sc.company),
        "OTHER_CO" => out.push(pick(rng, names::COMPANIES)),
        "ROLE" => out.push(pick(rng, ROLES)),
        "A_ROLE" => {
            let role = pick(rng, ROLES);
            out.push(article(role));
            out.push(" ");
            out.push(role);
        }
        "TOPIC" => out.push(sc.topic),
        "KW" => out.push(sc.kw[0]),
        "KW2" => out.push(sc.kw[1]),
        "EVENT" => out.push(pick(rng, EVENTS)),
        "DAY" => out.push(pick(rng, DAYS)),
        "MONTH" => out.push(pick(rng, MONTHS)),
        "CITY" => out.push(pick(rng, CITIES)),
        "WORKMODE" => out.push(pick(rng, WORKMODES)),
        "TEAM" => out.push(pick(rng, TEAMS)),
        "N" => out.push(&rng.random_range(2..=15u32).to_string()),
        "N4" => out.push(&rng.random_range(1000..10_000u32).to_string()),
        "PCT" => out.push(&(rng.random_range(2..=9u32) * 10).to_string()),
        "EXPIRY" => out.push(&format!("{:02}/{}", rng.random_range(1..=12u32), rng.random_range(26..=31u32))),
        "EMAIL" => out.push_pii(K::Email, &pii::email(rng, sc.me.given, sc.me.surname)),
        "THEM_EMAIL" => out.push_pii(K::Email, &pii::email(rng, sc.them.given, sc.them.surname)),
        "PHONE" => out.push_pii(K::Phone, &pii::phone(rng, sc.country)),
        "URL" => out.push_pii(K::Url, &pii::url(rng, sc.me.given, sc.me.surname)),
        "IP" => {
            let ip = if rng.random_bool(0.8) { pii::ipv4(rng) } else { pii::ipv6(rng) };
            out.push_pii(K::Ip, &ip);
        }
        "CC" => out.push_pii(K::CreditCard, &pii::credit_card(rng)),
        "IBAN" => out.push_pii(K::Iban, &pii::iban(rng)),
        "SSN" => out.push_pii(K::Ssn, &pii::ssn(rng)),
        "ADDRESS" => out.push_pii(K::Address, &pii::address(rng, sc.country)),
        other => {
            // Unknown slot: keep it verbatim rather than lose text (tests catch this).
            out.push("{");
            out.push(other);
            out.push("}");
        }
    }
}

/// Chooses up to three distinct PII kinds by weight, or none with probability `1 - rate`.
fn choose_kinds<R: Rng + ?Sized>(rng: &mut R, rate: f64, table: &[(PiiKind, u32)]) -> Vec<PiiKind> {
    if !rng.random_bool(rate.clamp(0.0, 1.0)) {
        return Vec::new();
    }
    let n = 1 + weighted(rng, &[80, 17, 3]);
    let mut weights: Vec<u32> = table.iter().map(|(_, w)| *w).collect();
    let mut kinds = Vec::with_capacity(n);
    for _ in 0..n {
        if weights.iter().all(|w| *w == 0) {
            break;
        }
        let i = weighted(rng, &weights);
        if let Some((k, _)) = table.get(i) {
            kinds.push(*k);
        }
        if let Some(w) = weights.get_mut(i) {
            *w = 0;
        }
    }
    kinds
}

fn message_sentences(kind: PiiKind) -> &'static [&'static str] {
    match kind {
        PiiKind::Email => EMAIL_SENTENCES,
        PiiKind::Phone => PHONE_SENTENCES,
        PiiKind::Url => URL_SENTENCES,
        PiiKind::Address => ADDRESS_SENTENCES,
        PiiKind::Ip => IP_SENTENCES,
        PiiKind::CreditCard => CARD_SENTENCES,
        PiiKind::Iban => IBAN_SENTENCES,
        PiiKind::Ssn => SSN_SENTENCES,
        PiiKind::Person => MENTIONS,
    }
}

/// Opening message from `ctx.sender` to `ctx.recipient`, with planted names and (in ~40% of messages) other PII.
pub fn first_message<R: Rng + ?Sized>(rng: &mut R, ctx: &MessageContext) -> Text {
    opening(rng, ctx).1
}

/// Opening message as [`first_message`] draws it (the same draws, the same text), with its kind: an index into
/// [`MESSAGE_KINDS`], what the reply to it is drawn conditional on (see [`reply_to`]).
pub fn opening<R: Rng + ?Sized>(rng: &mut R, ctx: &MessageContext) -> (u16, Text) {
    let topic = rng.random_range(0..TOPICS.len());
    let sc = Scene::new(rng, ctx, ctx.sender, ctx.recipient, topic);
    let mut t = Text::default();

    if rng.random_bool(0.9) {
        let greeting = pick_weighted(rng, GREETINGS);
        render(rng, &mut t, greeting, &sc);
        t.push(match weighted(rng, &[55, 15, 30]) {
            0 => "\n\n",
            1 => "\n",
            _ => " ",
        });
    }
    let (kind, body) = pick(rng, BODIES);
    render(rng, &mut t, body, &sc);
    if !body.contains("{THEM") && rng.random_bool(0.2) {
        t.push(" ");
        render_pick(rng, &mut t, MENTIONS, &sc);
    }

    let signature = rng.random_bool(0.5);
    let mut in_signature = Vec::new();
    for kind in choose_kinds(rng, MESSAGE_PII_RATE, MESSAGE_PII) {
        let fits_signature = matches!(kind, PiiKind::Email | PiiKind::Phone | PiiKind::Url);
        if signature && fits_signature && rng.random_bool(0.5) {
            in_signature.push(kind);
            continue;
        }
        t.push(" ");
        render_pick(rng, &mut t, message_sentences(kind), &sc);
    }

    if signature {
        if rng.random_bool(0.3) {
            t.push(" ");
            t.push(pick(rng, &CLOSERS[2..]));
        }
        t.push("\n\n");
        t.push(pick(rng, SIGN_OFFS));
        t.push("\n");
        let name = if rng.random_bool(0.7) { "{ME_FULL}" } else { "{ME}" };
        render(rng, &mut t, name, &sc);
        if rng.random_bool(0.35) {
            t.push("\n");
            render_pick(rng, &mut t, &["{TITLE} | {COMPANY}", "{TITLE} at {COMPANY}", "{TITLE}, {COMPANY}"], &sc);
        }
        for kind in in_signature {
            let lines = match kind {
                PiiKind::Email => EMAIL_SIGNATURES,
                PiiKind::Phone => PHONE_SIGNATURES,
                _ => URL_SIGNATURES,
            };
            t.push("\n");
            render_pick(rng, &mut t, lines, &sc);
        }
    } else {
        let closer = pick(rng, CLOSERS);
        if !closer.is_empty() {
            t.push(" ");
            t.push(closer);
        }
    }
    (kind, t)
}

/// Zipf–Mandelbrot rank in `0..n`: weight ∝ 1/(k + OFFSET)^1.1, so the head is heavy but no single reply dominates.
fn zipf_rank<R: Rng + ?Sized>(rng: &mut R, n: usize) -> usize {
    const OFFSET: usize = 2;
    const EXPONENT: f64 = 1.1;
    if n == 0 {
        return 0;
    }
    if let Ok(z) = Zipf::new((n + OFFSET) as f64, EXPONENT) {
        // Rejection of the first OFFSET ranks shifts plain Zipf into Zipf–Mandelbrot.
        for _ in 0..64 {
            let k = z.sample(rng) as usize;
            if k > OFFSET {
                return (k - OFFSET - 1).min(n - 1);
            }
        }
    }
    rng.random_range(0..n)
}

/// Splits trailing `.`, `!` and `?` off a reply.
fn split_trailing_punct(s: &str) -> (&str, &str) {
    let core = s.trim_end_matches(['.', '!', '?', ' ']);
    (core, &s[core.len()..])
}

/// Lower-cases the first letter unless the reply starts with the pronoun "I".
fn lower_first(s: &str) -> String {
    if s.starts_with("I ") || s.starts_with("I'") {
        return s.to_owned();
    }
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Natural surface variation of an inventory reply (case, punctuation, a short interjection).
fn vary<R: Rng + ?Sized>(rng: &mut R, base: &str) -> String {
    match weighted(rng, &[74, 8, 9, 5, 4]) {
        0 => base.to_owned(),
        1 => base.to_lowercase(),
        2 => {
            let (core, punct) = split_trailing_punct(base);
            if punct.contains('?') || core.is_empty() { base.to_owned() } else { core.to_owned() }
        }
        3 => {
            let (core, punct) = split_trailing_punct(base);
            match punct {
                "!" => format!("{core}!!"),
                "." => format!("{core}!"),
                _ => base.to_owned(),
            }
        }
        _ => format!("{}{}", pick(rng, &["Hi! ", "Hello! ", "Hey, ", "Ah, ", "Oh, "]), lower_first(base)),
    }
}

/// Reply by `ctx.recipient` to `ctx.sender`, drawn without regard to the message replied to: an intent index
/// into [`INTENTS`] and the reply text (the network uses [`reply_to`]; this draw stays for text-only benches).
///
/// Replies come from a long-tailed inventory; ~8 % address the sender by
/// given name and ~3 % share the replier's phone (in `ctx.sender_country`'s
/// format, as the context carries no other country) or email.
pub fn reply<R: Rng + ?Sized>(rng: &mut R, ctx: &MessageContext) -> (u16, Text) {
    let (intent, base) = REPLIES.get(zipf_rank(rng, REPLIES.len())).copied().unwrap_or((THANKS, "Thanks!"));
    (intent, dress_reply(rng, ctx, base))
}

/// Surface variation, an optional vocative and an optional contact sentence around an inventory reply.
fn dress_reply<R: Rng + ?Sized>(rng: &mut R, ctx: &MessageContext, base: &str) -> Text {
    let varied = vary(rng, base);
    let sc = Scene {
        me: ctx.recipient,
        you: ctx.sender,
        them: ctx.mentioned,
        country: ctx.sender_country,
        title: non_empty(ctx.sender_title, "professional"),
        industry: non_empty(ctx.sender_industry, "this industry"),
        company: non_empty(ctx.company, "my company"),
        topic: "work",
        kw: ["work", "work"],
    };
    let mut t = Text::default();
    if rng.random_bool(0.08) {
        let name = short_name(&sc.you);
        match weighted(rng, &[35, 15, 35, 15]) {
            0 => {
                t.push("Hi ");
                t.push_pii(PiiKind::Person, name);
                t.push(", ");
                t.push(&lower_first(&varied));
            }
            1 => {
                t.push("Hey ");
                t.push_pii(PiiKind::Person, name);
                t.push("! ");
                t.push(&varied);
            }
            2 => {
                let (core, punct) = split_trailing_punct(&varied);
                t.push(core);
                t.push(", ");
                t.push_pii(PiiKind::Person, name);
                t.push(if punct.is_empty() { "!" } else { punct });
            }
            _ => {
                t.push_pii(PiiKind::Person, name);
                t.push(" – ");
                t.push(&varied);
            }
        }
    } else {
        t.push(&varied);
    }
    if rng.random_bool(0.03) {
        t.push(" ");
        render_pick(rng, &mut t, REPLY_CONTACT, &sc);
    }
    t
}

/// Feed post by `ctx.sender` about `TOPICS[topic]` (taken modulo the list length), with PII in ~15% of posts.
pub fn post<R: Rng + ?Sized>(rng: &mut R, topic: usize, ctx: &MessageContext) -> Text {
    let topic = topic % TOPICS.len();
    let sc = Scene::new(rng, ctx, ctx.sender, ctx.recipient, topic);
    let mut t = Text::default();
    let joiner = if rng.random_bool(0.35) { "\n\n" } else { " " };

    let sentences = rng.random_range(1..=4usize);
    let closer = sentences >= 2 && rng.random_bool(0.6);
    let middles = sentences - 1 - usize::from(closer);

    render_pick(rng, &mut t, POST_OPENERS, &sc);
    let first_middle = rng.random_range(0..POST_MIDDLES.len());
    for i in 0..middles {
        t.push(joiner);
        let tpl = POST_MIDDLES.get((first_middle + i * 5) % POST_MIDDLES.len()).copied().unwrap_or("");
        render(rng, &mut t, tpl, &sc);
    }
    for kind in choose_kinds(rng, POST_PII_RATE, POST_PII).into_iter().take(1) {
        let lines = match kind {
            PiiKind::Url => POST_URL_SENTENCES,
            PiiKind::Email => POST_EMAIL_SENTENCES,
            PiiKind::Phone => POST_PHONE_SENTENCES,
            _ => POST_PERSON_SENTENCES,
        };
        t.push(joiner);
        render_pick(rng, &mut t, lines, &sc);
    }
    if closer {
        t.push(joiner);
        t.push(if rng.random_bool(0.05) { pick(rng, POST_CLOSERS_INTL) } else { pick(rng, POST_CLOSERS) });
    }
    if rng.random_bool(0.4) {
        let tags = VOCAB.get(topic).map(|(_, tags)| *tags).unwrap_or_default();
        if !tags.is_empty() {
            t.push(if rng.random_bool(0.6) { "\n\n" } else { " " });
            let count = rng.random_range(1..=tags.len().min(3));
            let start = rng.random_range(0..tags.len());
            for i in 0..count {
                if i > 0 {
                    t.push(" ");
                }
                t.push("#");
                t.push(tags.get((start + i) % tags.len()).copied().unwrap_or(""));
            }
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use std::collections::{BTreeMap, BTreeSet};

    const COUNTRIES: &[&str] =
        &["US", "GB", "DE", "FR", "IN", "NL", "ES", "IT", "BR", "JP", "AU", "SG", "IE", "CH", "CA", "ZZ"];
    const TITLES: &[&str] =
        &["Senior Software Engineer", "Engineering Manager", "UX Designer", "Recruiter", "Head of Sales", ""];
    const INDUSTRIES: &[&str] = &["Financial Services", "Healthcare", "Software", "Retail", "Education"];

    /// A random context built from the name lists (including non-ASCII names).
    fn with_ctx<R: Rng, T>(rng: &mut R, f: impl FnOnce(&mut R, &MessageContext) -> T) -> T {
        let person = |rng: &mut R| Person { given: pick(rng, names::GIVEN_NAMES), surname: pick(rng, names::SURNAMES) };
        let ctx = MessageContext {
            sender: person(rng),
            recipient: person(rng),
            mentioned: person(rng),
            sender_country: pick(rng, COUNTRIES),
            sender_title: pick(rng, TITLES),
            sender_industry: pick(rng, INDUSTRIES),
            company: pick(rng, names::COMPANIES),
        };
        f(rng, &ctx)
    }

    fn name_words() -> BTreeSet<&'static str> {
        names::GIVEN_NAMES.iter().chain(names::SURNAMES).flat_map(|n| n.split_whitespace()).collect()
    }

    /// Checks every structural property of the spans, and that each value looks like its kind.
    fn check(t: &Text, words: &BTreeSet<&str>) {
        let mut prev_end = 0;
        for p in &t.planted {
            assert!(p.start < p.end, "empty span in {:?}", t.text);
            assert!(p.start >= prev_end, "overlapping or unsorted spans in {:?}", t.text);
            assert!(p.end <= t.text.len());
            assert!(t.text.is_char_boundary(p.start) && t.text.is_char_boundary(p.end));
            prev_end = p.end;
            let v = &t.text[p.start..p.end];
            assert_eq!(v.trim(), v, "{v:?}");
            let ends_in_punct = v.ends_with([',', ';', ':', '!', '?', ')']);
            match p.kind {
                PiiKind::Email => assert!(v.matches('@').count() == 1 && !v.contains(' '), "{v}"),
                PiiKind::Phone => {
                    assert!(v.chars().all(|c| c.is_ascii_digit() || " +()-./ext".contains(c)), "{v}");
                    assert!(v.chars().filter(char::is_ascii_digit).count() >= 8, "{v}");
                }
                PiiKind::Url => {
                    assert!(v.contains('.') && !v.contains(char::is_whitespace) && !v.ends_with('.'), "{v}")
                }
                PiiKind::Ip => assert!(v.parse::<std::net::IpAddr>().is_ok(), "{v}"),
                PiiKind::CreditCard => assert!(pii::luhn_valid(v), "{v}"),
                PiiKind::Iban => assert!(pii::iban_valid(v), "{v}"),
                PiiKind::Ssn => assert!(pii::ssn_valid(v), "{v}"),
                PiiKind::Address => assert!(v.chars().any(|c| c.is_ascii_digit()), "{v}"),
                PiiKind::Person => {
                    for w in v.split_whitespace() {
                        assert!(words.contains(w), "{w:?} of {v:?} is not a name");
                    }
                }
            }
            if p.kind != PiiKind::Address {
                assert!(!ends_in_punct, "{v:?}");
            }
        }
        assert!(!t.text.contains('{') && !t.text.contains('}'), "unrendered slot in {:?}", t.text);
    }

    #[test]
    fn push_pii_records_exact_spans() {
        let mut t = Text::default();
        t.push("こんにちは、");
        t.push_pii(PiiKind::Person, "Zoë");
        t.push("さん。Mail: ");
        t.push_pii(PiiKind::Email, "zoe@example.com");
        t.push_pii(PiiKind::Phone, "");
        t.push(".");
        assert_eq!(t.planted.len(), 2);
        assert_eq!(&t.text[t.planted[0].start..t.planted[0].end], "Zoë");
        assert_eq!(&t.text[t.planted[1].start..t.planted[1].end], "zoe@example.com");
        assert_eq!(t.planted[1].kind, PiiKind::Email);
    }

    #[test]
    fn kinds_have_labels() {
        let labels: Vec<&str> = PiiKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(labels, ["EMAIL", "PHONE", "URL", "IP", "CREDIT_CARD", "IBAN", "SSN", "ADDRESS", "PERSON"]);
    }

    #[test]
    fn vocab_matches_topics() {
        assert_eq!(TOPICS.len(), 20);
        assert_eq!(VOCAB.len(), TOPICS.len());
        for (kws, tags) in VOCAB {
            assert!(kws.len() >= 2 && !tags.is_empty());
        }
    }

    #[test]
    fn spans_are_exact_in_messages_replies_and_posts() {
        let words = name_words();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut non_ascii = 0;
        for i in 0..2000 {
            let m = with_ctx(&mut rng, first_message);
            check(&m, &words);
            let (intent, answer) = with_ctx(&mut rng, reply);
            assert!(usize::from(intent) < INTENTS.len());
            check(&answer, &words);
            let p = with_ctx(&mut rng, |r, c| post(r, i, c));
            check(&p, &words);
            non_ascii += usize::from(!m.text.is_ascii());
        }
        assert!(non_ascii > 100, "{non_ascii}");
    }

    #[test]
    fn empty_context_does_not_panic() {
        let empty = Person { given: "", surname: "" };
        let ctx = MessageContext {
            sender: empty,
            recipient: empty,
            mentioned: empty,
            sender_country: "",
            sender_title: "",
            sender_industry: "",
            company: "",
        };
        let words = name_words();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for i in 0..500 {
            check(&first_message(&mut rng, &ctx), &words);
            check(&reply(&mut rng, &ctx).1, &words);
            check(&post(&mut rng, i * 7919, &ctx), &words);
        }
    }

    #[test]
    fn output_is_deterministic() {
        let run = |seed: u64| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..200)
                .map(|i| {
                    let m = with_ctx(&mut rng, first_message);
                    let (intent, rp) = with_ctx(&mut rng, reply);
                    let p = with_ctx(&mut rng, |r, c| post(r, i, c));
                    (m, intent, rp, p)
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(99), run(99));
        assert_ne!(run(99), run(100));
    }

    #[test]
    fn first_messages_carry_enough_pii() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let n = 2000;
        let mut with_pii = 0;
        let mut with_person = 0;
        let mut kinds = BTreeSet::new();
        let mut distinct = BTreeSet::new();
        for _ in 0..n {
            let m = with_ctx(&mut rng, first_message);
            with_pii += usize::from(m.planted.iter().any(|p| p.kind != PiiKind::Person));
            with_person += usize::from(m.planted.iter().any(|p| p.kind == PiiKind::Person));
            kinds.extend(m.planted.iter().map(|p| p.kind));
            distinct.insert(m.text);
        }
        let rate = with_pii as f64 / n as f64;
        assert!((0.35..=0.47).contains(&rate), "{rate}");
        assert!(with_person as f64 / n as f64 > 0.8);
        assert_eq!(kinds.len(), PiiKind::ALL.len(), "{kinds:?}");
        assert!(distinct.len() >= n - 10, "{}", distinct.len());
    }

    #[test]
    fn posts_carry_some_pii() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let n = 4000;
        let mut with_pii = 0;
        for i in 0..n {
            let p = with_ctx(&mut rng, |r, c| post(r, i % TOPICS.len(), c));
            with_pii += usize::from(!p.planted.is_empty());
        }
        let rate = with_pii as f64 / n as f64;
        assert!((0.1..=0.2).contains(&rate), "{rate}");
    }

    #[test]
    fn reply_inventory_is_consistent() {
        assert!(REPLIES.len() >= 150, "{}", REPLIES.len());
        let normalise = |s: &str| s.to_lowercase().trim_end_matches(['.', '!', '?', ' ']).to_owned();
        let mut seen: BTreeMap<String, u16> = BTreeMap::new();
        for (intent, s) in REPLIES {
            assert!(usize::from(*intent) < INTENTS.len());
            assert!(!s.contains('{'));
            assert!(seen.insert(normalise(s), *intent).is_none(), "duplicate reply {s:?}");
        }
        let used: BTreeSet<u16> = REPLIES.iter().map(|(i, _)| *i).collect();
        assert_eq!(used.len(), INTENTS.len(), "every intent has replies");
        for (c, name) in [
            (THANKS, "thanks"),
            (THANKS_FOR_REACHING_OUT, "thanks_for_reaching_out"),
            (SOUNDS_GOOD, "sounds_good"),
            (WILL_REVIEW, "will_review"),
            (WILL_GET_BACK, "will_get_back"),
            (SCHEDULE_CALL, "schedule_call"),
            (PROPOSE_TIME, "propose_time"),
            (INTERESTED, "interested"),
            (NOT_INTERESTED, "not_interested"),
            (NO_THANKS, "no_thanks"),
            (CONGRATS, "congrats"),
            (THANKS_FOR_CONGRATS, "thanks_for_congrats"),
            (SEND_RESUME, "send_resume"),
            (RESUME_SENT, "resume_sent"),
            (FOLLOW_UP_LATER, "follow_up_later"),
            (YES, "yes"),
            (AGREE, "agree"),
            (HAPPY_TO_HELP, "happy_to_help"),
            (ASK_DETAILS, "ask_details"),
            (APOLOGISE_DELAY, "apologise_delay"),
            (GREAT_TO_CONNECT, "great_to_connect"),
            (INTRO_ACCEPTED, "intro_accepted"),
            (REFERRAL_OK, "referral_ok"),
            (REFER_ELSEWHERE, "refer_elsewhere"),
            (ALREADY_APPLIED, "already_applied"),
            (OUT_OF_OFFICE, "out_of_office"),
            (ON_IT, "on_it"),
            (CONFIRM_RECEIVED, "confirm_received"),
            (ASK_SALARY, "ask_salary"),
            (WELCOME, "welcome"),
        ] {
            assert_eq!(INTENTS[usize::from(c)], name);
        }
    }

    #[test]
    fn replies_are_long_tailed() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let n = 20_000;
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        let mut named = 0;
        let mut contact = 0;
        let mut ranks = vec![0usize; REPLIES.len()];
        for _ in 0..n {
            let (intent, t) = with_ctx(&mut rng, reply);
            named += usize::from(t.planted.iter().any(|p| p.kind == PiiKind::Person));
            contact += usize::from(t.planted.iter().any(|p| p.kind != PiiKind::Person));
            // The returned intent is the one of the inventory entry the text came from
            // (the longest entry contained verbatim, when variation left it intact).
            let lower = t.text.to_lowercase();
            let found = REPLIES
                .iter()
                .map(|(i, s)| (*i, s.to_lowercase().trim_end_matches(['.', '!', '?']).to_owned()))
                .filter(|(_, s)| lower.contains(s.as_str()))
                .max_by_key(|(_, s)| s.len());
            if let Some((i, _)) = found {
                assert_eq!(i, intent, "{:?}", t.text);
            }
            *counts.entry(t.text).or_default() += 1;
        }
        for _ in 0..n {
            if let Some(c) = ranks.get_mut(zipf_rank(&mut rng, REPLIES.len())) {
                *c += 1;
            }
        }
        let top = counts.values().copied().max().unwrap_or(0);
        assert!(counts.len() >= 100, "{}", counts.len());
        assert!((top as f64) < 0.15 * n as f64, "top reply {top} of {n}");
        assert!(ranks[0] > ranks[10] && ranks[10] > ranks[100], "{ranks:?}");
        assert!(ranks.iter().filter(|c| **c > 0).count() >= 140);
        let named = named as f64 / n as f64;
        assert!((0.06..=0.10).contains(&named), "{named}");
        let contact = contact as f64 / n as f64;
        assert!((0.02..=0.04).contains(&contact), "{contact}");
    }

    #[test]
    fn every_template_renders_cleanly() {
        let words = name_words();
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let bodies: Vec<&str> = BODIES.iter().map(|(_, b)| *b).collect();
        let lists: &[&[&str]] = &[
            &bodies,
            MENTIONS,
            CUES,
            EMAIL_SENTENCES,
            PHONE_SENTENCES,
            URL_SENTENCES,
            ADDRESS_SENTENCES,
            IP_SENTENCES,
            CARD_SENTENCES,
            IBAN_SENTENCES,
            SSN_SENTENCES,
            EMAIL_SIGNATURES,
            PHONE_SIGNATURES,
            URL_SIGNATURES,
            POST_OPENERS,
            POST_MIDDLES,
            POST_URL_SENTENCES,
            POST_EMAIL_SENTENCES,
            POST_PERSON_SENTENCES,
            POST_PHONE_SENTENCES,
            REPLY_CONTACT,
        ];
        for list in lists {
            for tpl in *list {
                let t = with_ctx(&mut rng, |r, c| {
                    let sc = Scene::new(r, c, c.sender, c.recipient, 3);
                    let mut t = Text::default();
                    render(r, &mut t, tpl, &sc);
                    t
                });
                check(&t, &words);
            }
        }
        for (_, tpl) in GREETINGS {
            let t = with_ctx(&mut rng, |r, c| {
                let sc = Scene::new(r, c, c.sender, c.recipient, 0);
                let mut t = Text::default();
                render(r, &mut t, tpl, &sc);
                t
            });
            check(&t, &words);
        }
    }

    #[test]
    fn every_body_kind_is_named_and_used() {
        let used: BTreeSet<u16> = BODIES.iter().map(|(k, _)| *k).collect();
        assert_eq!(used.len(), MESSAGE_KINDS.len());
        assert_eq!(OPENING_INTENTS.len(), MESSAGE_KINDS.len());
        assert_eq!(FOLLOW_INTENTS.len(), INTENTS.len());
        for c in (0..MESSAGE_KINDS.len() as u16)
            .map(ReplyCondition::Opening)
            .chain((0..INTENTS.len() as u16).map(ReplyCondition::Reply))
        {
            assert!(!specific_intents(c).is_empty(), "{c:?}");
            let (kind, label) = c.truth();
            assert_eq!(ReplyCondition::from_truth(kind, label), Some(c));
        }
        assert_eq!(ReplyCondition::from_truth("opening", "thanks"), None);
        assert_eq!(ReplyCondition::from_truth("post", "thanks"), None);
    }

    #[test]
    fn the_reply_law_is_a_distribution_that_depends_on_the_message() {
        for c in
            [ReplyCondition::Opening(kind::RECRUITER), ReplyCondition::Reply(SEND_RESUME), ReplyCondition::Reply(999)]
        {
            let d = reply_distribution(c);
            assert_eq!(d.len(), REPLIES.len());
            let total: f64 = d.iter().map(|(_, _, p)| p).sum();
            assert!((total - 1.0).abs() < 1e-9, "{c:?}: {total}");
            // Every reply keeps some probability (the generic share), so nothing is impossible.
            assert!(d.iter().all(|(_, _, p)| *p > 0.0));
            let by_intent = reply_intent_distribution(c);
            assert!((by_intent.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        }
        let congrats = reply_intent_distribution(ReplyCondition::Opening(kind::CONGRATULATIONS));
        assert!(congrats[usize::from(THANKS_FOR_CONGRATS)] > 0.45, "{congrats:?}");
        let resume = reply_intent_distribution(ReplyCondition::Reply(SEND_RESUME));
        assert!(resume[usize::from(RESUME_SENT)] > 0.5, "{resume:?}");
        let recruiter = reply_intent_distribution(ReplyCondition::Opening(kind::RECRUITER));
        assert!(recruiter[usize::from(THANKS_FOR_CONGRATS)] < 0.01, "{recruiter:?}");
    }

    #[test]
    fn reply_to_samples_the_reply_law() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let cond = ReplyCondition::Opening(kind::REFERRAL);
        let expected = reply_intent_distribution(cond);
        let n = 20_000;
        let mut counts = vec![0usize; INTENTS.len()];
        for _ in 0..n {
            let (intent, _) = with_ctx(&mut rng, |r, c| reply_to(r, c, cond));
            counts[usize::from(intent)] += 1;
        }
        for (i, (&c, &p)) in counts.iter().zip(&expected).enumerate() {
            let share = c as f64 / n as f64;
            // Four standard errors of a binomial share, at least 0.005.
            let tolerance = (4.0 * (p * (1.0 - p) / n as f64).sqrt()).max(0.005);
            assert!((share - p).abs() < tolerance, "{}: {share} vs {p}", INTENTS[i]);
        }
    }

    #[test]
    fn opening_draws_what_first_message_draws() {
        let mut a = ChaCha8Rng::seed_from_u64(12);
        let mut b = ChaCha8Rng::seed_from_u64(12);
        for _ in 0..200 {
            let m = with_ctx(&mut a, first_message);
            let (kind, o) = with_ctx(&mut b, opening);
            assert_eq!(m, o);
            assert!(usize::from(kind) < MESSAGE_KINDS.len());
        }
    }

    #[test]
    fn articles_read_naturally() {
        assert_eq!(article("Engineering Manager"), "an");
        assert_eq!(article("UX Designer"), "a");
        assert_eq!(article("Product Manager"), "a");
        assert_eq!(article("Operations Lead"), "an");
    }
}
