//! Text a client chose, cut before it is stored or logged.

/// Most characters kept of a client-chosen value (a source name, delivery id, user name).
pub const CLIP_CHARS: usize = 200;

/// Cuts `text` to `CLIP_CHARS` characters, marking the cut with `…`.
pub fn clip(text: &str) -> String {
    match text.char_indices().nth(CLIP_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_text_is_clipped() {
        assert_eq!(clip("abc"), "abc");
        let long = "é".repeat(500);
        let c = clip(&long);
        assert_eq!(c.chars().count(), CLIP_CHARS + 1);
        assert!(c.ends_with('…'));
    }
}
