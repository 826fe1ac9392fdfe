//! The text and HTML bodies of an email, from its blocks. Every value that goes into the HTML
//! is HTML-escaped.

use herald_engine::notify::content::shorten;

use super::{Block, MAX_SUBJECT_BYTES};

/// A subject: one line without control characters, cut to [`MAX_SUBJECT_BYTES`].
pub(super) fn one_line(text: &str) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let words: Vec<&str> = flat.split_whitespace().collect();
    shorten(&words.join(" "), MAX_SUBJECT_BYTES)
}

/// `text` without carriage returns and other control characters except newlines and tabs.
fn clean(text: &str) -> String {
    text.chars()
        .filter(|&c| c == '\n' || c == '\t' || !c.is_control())
        .collect()
}

pub(super) fn text_body(blocks: &[Block]) -> String {
    let mut parts = Vec::new();
    for block in blocks {
        match block {
            Block::Paragraph(p) => parts.push(clean(p)),
            Block::Lines(lines) => parts.push(
                lines
                    .iter()
                    .map(|(sender, text)| {
                        // Continuation lines are indented so they read as one message.
                        let text = clean(text).replace('\n', "\n    ");
                        format!("{}: {text}", one_line(sender))
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            Block::Footer(f) => parts.push(format!("-- \n{}", clean(f))),
        }
    }
    let mut text = parts.join("\n\n");
    text.push('\n');
    text
}

/// Escapes `text` for HTML element content and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escaped, with its line breaks kept.
fn html_text(text: &str) -> String {
    escape_html(&clean(text)).replace('\n', "<br>\n")
}

pub(super) fn html_body(lang: &str, subject: &str, blocks: &[Block]) -> String {
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n</head>\n\
         <body style=\"font-family: sans-serif; line-height: 1.45; color: #222;\">\n",
        escape_html(subject)
    );
    for block in blocks {
        match block {
            Block::Paragraph(p) => {
                html.push_str(&format!("<p>{}</p>\n", html_text(p)));
            }
            Block::Lines(lines) => {
                html.push_str("<ul style=\"list-style: none; padding-left: 0;\">\n");
                for (sender, text) in lines {
                    html.push_str(&format!(
                        "<li style=\"margin-bottom: 0.5em;\"><strong>{}</strong>: {}</li>\n",
                        escape_html(&one_line(sender)),
                        html_text(text)
                    ));
                }
                html.push_str("</ul>\n");
            }
            Block::Footer(f) => {
                html.push_str(&format!(
                    "<p style=\"color: #777; font-size: small;\">{}</p>\n",
                    html_text(f)
                ));
            }
        }
    }
    html.push_str("</body>\n</html>\n");
    html
}
