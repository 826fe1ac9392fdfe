//! Fitting a message to [`MAX_MESSAGE_BYTES`](super::MAX_MESSAGE_BYTES): custom data goes
//! first, then everything but the essentials; texts are cut as little as needed.

use herald_engine::notify::content::shorten;

use super::Parts;

/// The keys that survive when nothing else fits.
const ESSENTIALS: &[&str] = &[
    "kind",
    "notification_id",
    "conversation_id",
    "position",
    "call_id",
    "badge",
    "tag",
];

/// The text a message keeps before any custom data is given up.
pub const MIN_TITLE: usize = 256;
pub const MIN_BODY: usize = 512;

impl Parts<'_> {
    fn field(&mut self, field: Field) -> &mut Option<String> {
        match field {
            Field::Body => &mut self.body,
            Field::Title => &mut self.title,
        }
    }
}

#[derive(Clone, Copy)]
enum Field {
    Body,
    Title,
}

/// Shortens one text field to the longest cut with which the message fits. Answers whether it
/// now fits; if no cut does, the field is emptied.
fn shrink(parts: &mut Parts<'_>, field: Field, limit: usize) -> bool {
    let Some(original) = parts.field(field).take().filter(|t| !t.is_empty()) else {
        return false;
    };
    let fits = |parts: &mut Parts<'_>, max: usize| {
        *parts.field(field) = Some(shorten(&original, max));
        parts.size() <= limit
    };
    let (mut lo, mut hi) = (0usize, original.len());
    if !fits(parts, lo) {
        *parts.field(field) = Some(String::new());
        return false;
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fits(parts, mid) { lo = mid } else { hi = mid }
    }
    fits(parts, lo)
}

/// Fits the message: a GMS push's oldest transcript items go first. Then, if it is too big even with the text cut to [`MIN_TITLE`] and
/// [`MIN_BODY`] bytes, custom data entries go (last key first), then everything but the
/// essentials; then the body and the title are shortened as little as needed.
pub(super) fn fit(parts: &mut Parts<'_>, limit: usize) {
    // A GMS push's transcript is what it says: its oldest items give way first, down to the
    // latest (an item's text is bounded far below the limit).
    while parts.size() > limit
        && let Some(gms) = parts.gms.as_mut()
        && gms.last_transcript.len() > 1
    {
        gms.last_transcript.remove(0);
    }
    if parts.size() <= limit {
        return;
    }
    let texts = (parts.title.clone(), parts.body.clone());
    parts.title = texts.0.as_deref().map(|t| shorten(t, MIN_TITLE));
    parts.body = texts.1.as_deref().map(|b| shorten(b, MIN_BODY));
    while parts.size() > limit && parts.custom.pop_last().is_some() {}
    if parts.size() > limit {
        parts.herald.retain(|k, _| ESSENTIALS.contains(&k.as_str()));
    }
    if parts.size() > limit {
        // Ids are bounded far below the limit; this cannot happen, but never send too much.
        parts.herald.clear();
    }
    (parts.title, parts.body) = texts;
    if parts.size() <= limit || shrink(parts, Field::Body, limit) {
        return;
    }
    shrink(parts, Field::Title, limit);
}
