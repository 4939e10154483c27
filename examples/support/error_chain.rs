//! An error as one line, with the errors it came from.

/// The error and its sources, each said once (layers often repeat their
/// source's text in their own).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let said = s.to_string();
        if !text.contains(&said) {
            text.push_str(&format!(": {said}"));
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn sources_follow_the_error_once_each() {
        let inner = std::io::Error::other("refused");
        assert_eq!(error_chain(&Outer(inner)), "outer: refused");
        let repeated = std::io::Error::other("outer");
        assert_eq!(error_chain(&Outer(repeated)), "outer");
    }
}
