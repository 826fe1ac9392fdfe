//! The built-in texts, per kind and locale: what a push says when the app overrides nothing.
//! Every kind in [`super::TEMPLATE_KINDS`] has an English text (the last fallback of every
//! locale chain), and each built-in locale has all of them, so a user is never shown a mix of
//! languages.

/// (kind, locale, title, body).
#[rustfmt::skip] // one text a line reads as the table it is
pub(super) const DEFAULTS: &[(&str, &str, &str, &str)] = &[
    // English.
    ("new_message", "en", "New message from {sender_name}", "{text}"),
    ("new_messages", "en", "{count} new messages from {sender_name}", "{text}"),
    ("incoming_call", "en", "Incoming call", "{caller_name} is calling"),
    ("missed_call", "en", "Missed call", "You missed a call from {caller_name}"),
    ("notice", "en", "New notice", "{text}"),
    ("notice_push_url", "en", "New link", "{url}"),
    ("invitation", "en", "New conversation", "{inviter_name} added you to a conversation"),
    // German.
    ("new_message", "de", "Neue Nachricht von {sender_name}", "{text}"),
    ("new_messages", "de", "{count} neue Nachrichten von {sender_name}", "{text}"),
    ("incoming_call", "de", "Eingehender Anruf", "{caller_name} ruft an"),
    ("missed_call", "de", "Verpasster Anruf", "Verpasster Anruf von {caller_name}"),
    ("notice", "de", "Neuer Hinweis", "{text}"),
    ("notice_push_url", "de", "Neuer Link", "{url}"),
    ("invitation", "de", "Neue Unterhaltung", "{inviter_name} hat Sie zu einer Unterhaltung hinzugefügt"),
    // French.
    ("new_message", "fr", "Nouveau message de {sender_name}", "{text}"),
    ("new_messages", "fr", "{count} nouveaux messages de {sender_name}", "{text}"),
    ("incoming_call", "fr", "Appel entrant", "{caller_name} vous appelle"),
    ("missed_call", "fr", "Appel manqué", "Appel manqué de {caller_name}"),
    ("notice", "fr", "Nouvel avis", "{text}"),
    ("notice_push_url", "fr", "Nouveau lien", "{url}"),
    ("invitation", "fr", "Nouvelle conversation", "{inviter_name} vous a ajouté à une conversation"),
    // Spanish.
    ("new_message", "es", "Nuevo mensaje de {sender_name}", "{text}"),
    ("new_messages", "es", "{count} mensajes nuevos de {sender_name}", "{text}"),
    ("incoming_call", "es", "Llamada entrante", "{caller_name} te está llamando"),
    ("missed_call", "es", "Llamada perdida", "Llamada perdida de {caller_name}"),
    ("notice", "es", "Nuevo aviso", "{text}"),
    ("notice_push_url", "es", "Nuevo enlace", "{url}"),
    ("invitation", "es", "Nueva conversación", "{inviter_name} te ha añadido a una conversación"),
    // Portuguese.
    ("new_message", "pt", "Nova mensagem de {sender_name}", "{text}"),
    ("new_messages", "pt", "{count} novas mensagens de {sender_name}", "{text}"),
    ("incoming_call", "pt", "Chamada recebida", "{caller_name} está ligando"),
    ("missed_call", "pt", "Chamada perdida", "Chamada perdida de {caller_name}"),
    ("notice", "pt", "Novo aviso", "{text}"),
    ("notice_push_url", "pt", "Novo link", "{url}"),
    ("invitation", "pt", "Nova conversa", "{inviter_name} adicionou você a uma conversa"),
];
