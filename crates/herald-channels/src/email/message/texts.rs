//! The built-in texts of an email, per language (`en`, `de`; anything else falls back to
//! English).

/// The built-in texts of one language. `{count}` is the only placeholder.
pub(super) struct Texts {
    pub lang: &'static str,
    pub digest_subject_one: &'static str,
    pub digest_subject_many: &'static str,
    pub digest_intro_one: &'static str,
    pub digest_intro_many: &'static str,
    pub digest_not_shown: &'static str,
    pub digest_action: &'static str,
    pub incoming_call_subject: &'static str,
    pub incoming_call_body: &'static str,
    pub incoming_call_action: &'static str,
    pub missed_call_subject: &'static str,
    pub missed_call_body: &'static str,
    pub missed_calls_count: &'static str,
    pub missed_call_action: &'static str,
    pub proactive_subject: &'static str,
    pub proactive_body: &'static str,
    pub proactive_action: &'static str,
    pub unknown_sender: &'static str,
    pub footer: &'static str,
}

const EN: Texts = Texts {
    lang: "en",
    digest_subject_one: "You have 1 unread message",
    digest_subject_many: "You have {count} unread messages",
    digest_intro_one: "There is 1 unread message in your conversation",
    digest_intro_many: "There are {count} unread messages in your conversation",
    digest_not_shown: "{count} earlier messages are not shown.",
    digest_action: "Open the app to read and reply.",
    incoming_call_subject: "Incoming call",
    incoming_call_body: "You have an incoming call.",
    incoming_call_action: "Open the app to answer.",
    missed_call_subject: "Missed call",
    missed_call_body: "You missed a call.",
    missed_calls_count: "You have {count} missed calls.",
    missed_call_action: "Open the app to call back.",
    proactive_subject: "New notification",
    proactive_body: "You have a new notification.",
    proactive_action: "Open the app to see it.",
    unknown_sender: "Someone",
    footer: "You receive this email because email notifications are on for your account.",
};

const DE: Texts = Texts {
    lang: "de",
    digest_subject_one: "Sie haben 1 ungelesene Nachricht",
    digest_subject_many: "Sie haben {count} ungelesene Nachrichten",
    digest_intro_one: "In Ihrer Unterhaltung gibt es 1 ungelesene Nachricht",
    digest_intro_many: "In Ihrer Unterhaltung gibt es {count} ungelesene Nachrichten",
    digest_not_shown: "{count} ältere Nachrichten werden nicht angezeigt.",
    digest_action: "Öffnen Sie die App, um sie zu lesen und zu antworten.",
    incoming_call_subject: "Eingehender Anruf",
    incoming_call_body: "Sie haben einen eingehenden Anruf.",
    incoming_call_action: "Öffnen Sie die App, um den Anruf anzunehmen.",
    missed_call_subject: "Verpasster Anruf",
    missed_call_body: "Sie haben einen Anruf verpasst.",
    missed_calls_count: "Sie haben {count} verpasste Anrufe.",
    missed_call_action: "Öffnen Sie die App, um zurückzurufen.",
    proactive_subject: "Neue Benachrichtigung",
    proactive_body: "Sie haben eine neue Benachrichtigung.",
    proactive_action: "Öffnen Sie die App, um sie anzusehen.",
    unknown_sender: "Jemand",
    footer: "Sie erhalten diese E-Mail, weil E-Mail-Benachrichtigungen für Ihr Konto aktiviert sind.",
};

/// The texts for `locale` (`de`, `de-AT`, `de_CH` → German; anything else → English).
pub(super) fn texts(locale: Option<&str>) -> &'static Texts {
    let lang = locale
        .and_then(|l| l.split(['-', '_']).next())
        .unwrap_or("en");
    if lang.eq_ignore_ascii_case("de") {
        &DE
    } else {
        &EN
    }
}

pub(super) fn with_count(text: &str, count: u64) -> String {
    text.replace("{count}", &count.to_string())
}
