//! Realistic synthetic message–reply pairs for tests: the synthetic network's reply inventory
//! (copied from `consentry-synth`'s `text.rs`, with its intent labels) answering incoming
//! messages whose scenario makes some intents likely, with the generator's surface variation,
//! vocatives and shared contact details, already redacted.
#![allow(dead_code)]

use consentry_replies::Pair;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// (generator intent label, reply) in the generator's popularity order.
pub const REPLIES: &[(&str, &str)] = &[
    ("sounds_good", "Sounds good!"),
    ("thanks", "Thanks!"),
    ("thanks_for_reaching_out", "Thanks for reaching out!"),
    ("will_review", "Thanks, I'll take a look."),
    ("thanks", "Thank you!"),
    ("will_get_back", "Let me check and get back to you."),
    ("congrats", "Congrats!!"),
    ("yes", "Yes, that works."),
    ("not_interested", "Not at the moment, thanks."),
    ("schedule_call", "Sure, what time works for you?"),
    ("congrats", "Congratulations on the new role!"),
    ("great_to_connect", "Great to connect!"),
    ("thanks", "Thanks a lot!"),
    ("interested", "Yes, I'd be interested to hear more."),
    ("sounds_good", "Sounds great, thanks."),
    ("happy_to_help", "Happy to help!"),
    ("will_review", "Will have a look and let you know."),
    ("agree", "Totally agree."),
    ("ask_details", "Could you share a bit more detail?"),
    ("apologise_delay", "Sorry for the late reply!"),
    ("thanks", "Thank you so much!"),
    ("follow_up_later", "Can we pick this up next week?"),
    ("send_resume", "Sure, I'll send over my CV."),
    ("no_thanks", "No thanks, but I appreciate you thinking of me."),
    ("yes", "Yes!"),
    ("thanks_for_congrats", "Thanks, really appreciate the kind words!"),
    ("schedule_call", "Happy to jump on a call."),
    ("sounds_good", "Perfect, thanks!"),
    ("will_get_back", "I'll get back to you by the end of the week."),
    ("thanks_for_reaching_out", "Thanks for getting in touch."),
    ("interested", "That sounds interesting, tell me more."),
    ("confirm_received", "Got it, thanks."),
    ("sounds_good", "Great, see you then."),
    ("propose_time", "How about Tuesday at 10?"),
    ("agree", "Couldn't agree more."),
    ("congrats", "Congrats, well deserved!"),
    ("not_interested", "I'm happy where I am for now, but thanks."),
    ("thanks", "Thanks so much, really appreciate it."),
    ("on_it", "On it."),
    ("ask_details", "What's the salary range?"),
    ("great_to_connect", "Nice to meet you too!"),
    ("happy_to_help", "Of course, happy to help."),
    ("yes", "Yes, definitely."),
    ("will_review", "I'll read through it tonight."),
    ("apologise_delay", "Apologies for the slow response."),
    ("follow_up_later", "Let's reconnect in a couple of weeks."),
    ("thanks_for_congrats", "Thank you! Excited for the next chapter."),
    ("schedule_call", "Let's set up a quick call."),
    ("sounds_good", "Works for me."),
    ("send_resume", "Could you send me your resume?"),
    ("confirm_received", "Received, thank you."),
    ("intro_accepted", "Thanks for the intro!"),
    ("congrats", "Congratulations!"),
    ("thanks", "Many thanks."),
    ("propose_time", "I'm free Thursday afternoon, does that work?"),
    ("referral_ok", "Happy to refer you, send me the job link."),
    ("no_thanks", "Thanks, but I'll pass this time."),
    ("will_get_back", "Let me think about it."),
    ("agree", "Absolutely."),
    ("ask_details", "Is the role remote?"),
    ("interested", "I'd love to learn more about the role."),
    ("great_to_connect", "Likewise, great to connect."),
    ("thanks_for_reaching_out", "Thanks for the message!"),
    ("out_of_office", "I'm travelling this week, back on Monday."),
    ("sounds_good", "Sounds like a plan."),
    ("yes", "Sure!"),
    ("welcome", "You're welcome!"),
    ("already_applied", "I've already applied, actually."),
    ("confirm_received", "Got your message, will reply properly soon."),
    ("schedule_call", "Can we do a 15-minute call tomorrow?"),
    ("happy_to_help", "No problem at all."),
    ("thanks", "Cheers!"),
    ("apologise_delay", "Sorry, this slipped through the cracks."),
    ("refer_elsewhere", "I'm not the right person, but I can introduce you to someone who is."),
    ("resume_sent", "Just sent my CV over email."),
    ("not_interested", "Not looking right now, but let's stay in touch."),
    ("congrats", "Huge congrats!"),
    ("will_review", "I'll have a look this afternoon."),
    ("ask_salary", "What's the compensation like?"),
    ("follow_up_later", "Ping me again after the holidays?"),
    ("agree", "Exactly my thoughts."),
    ("thanks_for_congrats", "Thanks! It's been a long road."),
    ("interested", "Open to a chat, yes."),
    ("on_it", "I'll take care of it."),
    ("propose_time", "Monday morning works best for me."),
    ("yes", "Yes please."),
    ("thanks", "Thanks, that's really helpful."),
    ("sounds_good", "Okay, sounds good."),
    ("great_to_connect", "Good to hear from you!"),
    ("will_get_back", "I'll check with my team and revert."),
    ("ask_details", "Which team would this be in?"),
    ("no_thanks", "Appreciate it, but no thanks."),
    ("intro_accepted", "Thanks for connecting us, I'll take it from here."),
    ("referral_ok", "Sure, I can put in a word for you."),
    ("schedule_call", "Send me an invite for whenever suits you."),
    ("happy_to_help", "Anytime!"),
    ("congrats", "So happy for you!"),
    ("confirm_received", "Noted, thanks."),
    ("thanks_for_reaching_out", "Appreciate you reaching out."),
    ("welcome", "My pleasure."),
    ("out_of_office", "I'm on leave until the 15th, will reply then."),
    ("agree", "Good point, I hadn't thought of that."),
    ("apologise_delay", "Sorry, crazy week over here."),
    ("already_applied", "I applied last week, fingers crossed."),
    ("send_resume", "Please send your CV and I'll forward it."),
    ("interested", "Sounds like a great opportunity."),
    ("propose_time", "Would Friday at 2pm work?"),
    ("yes", "Yep, that's right."),
    ("thanks", "Thanks a million!"),
    ("will_review", "I'll go through the document and send comments."),
    ("not_interested", "Thanks, but it's not a fit for me right now."),
    ("ask_salary", "Could you share the budget for the role?"),
    ("follow_up_later", "Let's circle back next month."),
    ("on_it", "Working on it now."),
    ("great_to_connect", "Thanks for connecting!"),
    ("sounds_good", "All good, thanks!"),
    ("ask_details", "What would the next steps be?"),
    ("refer_elsewhere", "You might want to ask our recruiting team directly."),
    ("congrats", "Well done on the launch!"),
    ("thanks_for_congrats", "Thanks, the team did all the hard work."),
    ("confirm_received", "Thanks, I've got everything I need."),
    ("schedule_call", "Let me send you a calendar invite."),
    ("happy_to_help", "Glad I could help."),
    ("resume_sent", "I've attached my resume here."),
    ("intro_accepted", "Lovely to be introduced, let's find a time."),
    ("will_get_back", "Give me a day or two."),
    ("yes", "Count me in!"),
    ("out_of_office", "Currently out of office, I'll respond when I'm back."),
    ("agree", "100% agree with this."),
    ("no_thanks", "I'll have to decline, but good luck with the search."),
    ("thanks", "Much appreciated!"),
    ("apologise_delay", "Apologies, only just seeing this."),
    ("referral_ok", "I've submitted the referral, you should get an email soon."),
    ("ask_details", "Can you tell me more about the team?"),
    ("propose_time", "Any chance we could meet next Wednesday?"),
    ("interested", "Yes, I'm open to new opportunities."),
    ("already_applied", "I'm already in the process with your team."),
    ("welcome", "No worries at all."),
    ("sounds_good", "Brilliant, thank you."),
    ("follow_up_later", "Could you follow up in January?"),
    ("on_it", "Will do."),
    ("congrats", "Congratulations on the promotion!"),
    ("thanks_for_reaching_out", "Thanks for thinking of me."),
    ("great_to_connect", "Always happy to connect with people in the field."),
    ("ask_salary", "Is there flexibility on the salary?"),
    ("confirm_received", "Thanks, confirmed on my side."),
    ("refer_elsewhere", "My colleague handles this, I'll forward your message."),
    ("schedule_call", "Happy to chat, my calendar is pretty open."),
    ("thanks", "Merci beaucoup !"),
    ("thanks", "Danke dir!"),
    ("thanks", "¡Muchas gracias!"),
    ("thanks", "ありがとうございます！"),
    ("thanks", "شكرا جزيلا"),
    ("sounds_good", "Très bien, à bientôt."),
    ("yes", "Claro que sí."),
    ("not_interested", "Not for me, but I know someone who might be interested."),
    ("will_review", "Let me digest this and come back to you."),
    ("happy_to_help", "Sure thing, what do you need?"),
    ("interested", "Keen to hear more!"),
    ("apologise_delay", "Sorry for going quiet, things have been hectic."),
    ("thanks_for_congrats", "Aw, thank you! Means a lot."),
    ("out_of_office", "I'm at a conference all week, can we talk next week?"),
    ("already_applied", "Thanks! I submitted my application yesterday."),
    ("resume_sent", "CV is on its way."),
    ("intro_accepted", "Thanks for looping me in."),
];

/// Incoming-message scenarios: bodies and the reply intents they tend to get (weights).
/// Message bodies of a scenario and the weighted reply intents they get.
type Scenario = (&'static [&'static str], &'static [(&'static str, u32)]);

const SCENARIOS: &[Scenario] = &[
    (
        &[
            "I'm a recruiter at {COMPANY} and came across your profile. We're hiring a {ROLE} and your background stood out. Would you be open to a quick chat?",
            "We're growing the team at {COMPANY} and I think you'd be a great fit for a {ROLE} opening. Interested in hearing more?",
            "Are you open to new opportunities at the moment? {COMPANY} is hiring a {ROLE} and your profile matches the spec.",
        ],
        &[
            ("interested", 25),
            ("not_interested", 20),
            ("no_thanks", 10),
            ("ask_salary", 10),
            ("ask_details", 15),
            ("thanks_for_reaching_out", 15),
            ("already_applied", 5),
        ],
    ),
    (
        &[
            "I'm applying for the {ROLE} role at your company and wondered if you'd be comfortable referring me.",
            "Would you be willing to put in a word for me for the {ROLE} position? Happy to send my CV first.",
        ],
        &[("referral_ok", 35), ("refer_elsewhere", 20), ("send_resume", 25), ("no_thanks", 10), ("will_get_back", 10)],
    ),
    (
        &[
            "Excited to share that I've started a new position as {ROLE} at {COMPANY}!",
            "Some news: I got promoted to {ROLE} this week!",
            "We just launched our new product at {COMPANY}, proud of the team.",
        ],
        &[("congrats", 88), ("great_to_connect", 12)],
    ),
    (
        &[
            "Congratulations on the new role at {COMPANY}!",
            "Congrats on the promotion, well deserved!",
            "Saw the news about your new job, congrats!",
        ],
        &[("thanks_for_congrats", 75), ("thanks", 25)],
    ),
    (
        &[
            "Do you have time for a call next week to discuss {TOPIC}?",
            "Could we set up a meeting to talk about {TOPIC}?",
        ],
        &[("schedule_call", 35), ("propose_time", 30), ("yes", 15), ("sounds_good", 10), ("follow_up_later", 10)],
    ),
    (
        &[
            "Does {DAY} at 10am work for you?",
            "How about we meet on {DAY} afternoon?",
            "I've booked {DAY} at 3pm, see you then.",
        ],
        &[("yes", 35), ("sounds_good", 45), ("propose_time", 20)],
    ),
    (
        &[
            "I've attached the draft proposal on {TOPIC}; let me know what you think.",
            "Here's the deck for {DAY}'s meeting, would love your feedback.",
        ],
        &[("will_review", 55), ("will_get_back", 20), ("confirm_received", 15), ("thanks", 10)],
    ),
    (
        &[
            "I really think {TOPIC} is the most underrated skill in our industry.",
            "Great discussion on {TOPIC} today, I think teams should invest more in it.",
        ],
        &[("agree", 85), ("thanks", 15)],
    ),
    (
        &[
            "Thanks so much for your help with {TOPIC} yesterday!",
            "Really appreciate you taking the time to review my CV.",
        ],
        &[("welcome", 50), ("happy_to_help", 50)],
    ),
    (
        &[
            "Could you help me understand how your team approaches {TOPIC}?",
            "Do you have a minute to help me with a question about {TOPIC}?",
        ],
        &[("happy_to_help", 45), ("will_get_back", 25), ("ask_details", 15), ("schedule_call", 15)],
    ),
    (
        &[
            "Great meeting you at the {TOPIC} meetup last week!",
            "I'd love to add you to my network, we both work on {TOPIC}.",
        ],
        &[("great_to_connect", 75), ("thanks_for_reaching_out", 25)],
    ),
    (
        &[
            "Let me introduce you to <PERSON>, who leads {TOPIC} at {COMPANY}.",
            "Looping in <PERSON>, you two should talk about {TOPIC}.",
        ],
        &[("intro_accepted", 80), ("great_to_connect", 20)],
    ),
    (
        &[
            "Can you handle the client escalation on {TOPIC} today?",
            "Could you update the {TOPIC} report before {DAY}?",
        ],
        &[("on_it", 60), ("out_of_office", 20), ("yes", 20)],
    ),
    (
        &[
            "Just following up on my last message about {TOPIC}.",
            "Bumping this to the top of your inbox in case it got buried.",
        ],
        &[("apologise_delay", 50), ("follow_up_later", 20), ("confirm_received", 15), ("out_of_office", 15)],
    ),
    (
        &[
            "Could you send me your CV for the {ROLE} position?",
            "Please share your resume so I can pass it on to the hiring manager.",
        ],
        &[("resume_sent", 80), ("will_get_back", 20)],
    ),
];

const GREETINGS: &[&str] = &["Hi <PERSON>,", "Hello <PERSON>,", "Dear <PERSON>,", "Hey <PERSON>!", "Hi there,", ""];
const COMPANIES: &[&str] = &["Northwind", "Globex", "Initech", "Umbrella Health", "Clearwater Media", "Acme"];
const ROLES: &[&str] = &["Data Engineer", "Product Manager", "UX Designer", "Sales Lead", "Nurse Practitioner"];
const TOPICS: &[&str] = &["machine learning", "supply chains", "inclusive hiring", "cloud costs", "brand strategy"];
const DAYS: &[&str] = &["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"];
const SIGN_OFFS: &[&str] = &["", "\n\nBest,\n<PERSON>", "\n\nThanks,\n<PERSON>\n<EMAIL>", " Cheers!"];

fn pick<'a>(rng: &mut ChaCha20Rng, xs: &[&'a str]) -> &'a str {
    xs[rng.random_range(0..xs.len())]
}

fn weighted(rng: &mut ChaCha20Rng, ws: &[f64]) -> usize {
    let total: f64 = ws.iter().sum();
    let mut x = rng.random::<f64>() * total;
    for (i, w) in ws.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    ws.len() - 1
}

fn incoming(rng: &mut ChaCha20Rng, bodies: &[&str]) -> String {
    let body = pick(rng, bodies)
        .replace("{COMPANY}", pick(rng, COMPANIES))
        .replace("{ROLE}", pick(rng, ROLES))
        .replace("{TOPIC}", pick(rng, TOPICS))
        .replace("{DAY}", pick(rng, DAYS));
    let greeting = pick(rng, GREETINGS);
    let sep = if greeting.is_empty() { "" } else { "\n\n" };
    format!("{greeting}{sep}{body}{}", pick(rng, SIGN_OFFS))
}

fn lower_first(s: &str) -> String {
    if s.starts_with("I ") || s.starts_with("I'") {
        return s.to_owned();
    }
    let mut c = s.chars();
    c.next().map(|f| f.to_lowercase().chain(c).collect()).unwrap_or_default()
}

/// The generator's surface variation, vocatives (redacted to `<PERSON>`) and shared contact details.
fn surface(rng: &mut ChaCha20Rng, base: &str) -> String {
    let core = base.trim_end_matches(['.', '!', '?']);
    let punct = &base[core.len()..];
    let varied = match weighted(rng, &[74.0, 8.0, 9.0, 5.0, 4.0]) {
        0 => base.to_owned(),
        1 => base.to_lowercase(),
        2 if !punct.contains('?') => core.to_owned(),
        3 if punct == "!" => format!("{core}!!"),
        4 => format!("{}{}", pick(rng, &["Hi! ", "Hello! ", "Hey, ", "Ah, ", "Oh, "]), lower_first(base)),
        _ => base.to_owned(),
    };
    let mut t = if rng.random_bool(0.08) {
        match rng.random_range(0..3) {
            0 => format!("Hi <PERSON>, {}", lower_first(&varied)),
            1 => format!("<PERSON> – {varied}"),
            _ => format!(
                "{}, <PERSON>{}",
                varied.trim_end_matches(['.', '!', '?']),
                if punct.is_empty() { "!" } else { punct }
            ),
        }
    } else {
        varied
    };
    if rng.random_bool(0.03) {
        t.push(' ');
        t.push_str(pick(rng, &["You can reach me at <PHONE>.", "Drop me a line at <EMAIL>."]));
    }
    t
}

/// Realistic pairs from `members` repliers (1–6 pairs each), with each pair's generator intent label.
pub fn pairs(seed: u64, members: u64) -> Vec<(Pair, &'static str)> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut out = Vec::new();
    for m in 0..members {
        let replier = 1_000_000 + m * 7919 % 1_000_003;
        let n = 1 + weighted(&mut rng, &[40.0, 25.0, 15.0, 10.0, 6.0, 4.0]);
        for i in 0..n {
            let (bodies, intents) = SCENARIOS[rng.random_range(0..SCENARIOS.len())];
            let ws: Vec<f64> = intents.iter().map(|(_, w)| f64::from(*w)).collect();
            let intent = intents[weighted(&mut rng, &ws)].0;
            let options: Vec<(usize, &str)> =
                REPLIES.iter().enumerate().filter(|(_, (l, _))| *l == intent).map(|(r, (_, s))| (r, *s)).collect();
            let rw: Vec<f64> = options.iter().map(|(r, _)| 1.0 / (*r as f64 + 3.0).powf(1.1)).collect();
            let base = options[weighted(&mut rng, &rw)].1;
            let pair = Pair {
                replier,
                incoming: incoming(&mut rng, bodies),
                reply: surface(&mut rng, base),
                at_ms: 1_700_000_000_000 + (m as i64) * 1000 + i as i64,
            };
            out.push((pair, intent));
        }
    }
    out
}
