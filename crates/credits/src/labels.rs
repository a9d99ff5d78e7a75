//! Free-text labels a caller attaches to ledger entries, bounded in length.

use serde::Serialize;

use crate::error::CreditsError;

fn bounded(field: &str, text: &str, min: usize, max: usize) -> Result<String, CreditsError> {
    let len = text.chars().count();
    if len < min || len > max {
        return Err(CreditsError::invalid(format!(
            "{field} must be {min}-{max} characters"
        )));
    }
    if text.chars().any(char::is_control) {
        return Err(CreditsError::invalid(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(text.to_owned())
}

/// What consumed the tokens (`enrichment`, `hygiene`, ...): 1–64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Operation(String);

impl Operation {
    pub fn parse(text: &str) -> Result<Self, CreditsError> {
        bounded("operation", text, 1, 64).map(Self)
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The project and session a deduction belongs to; each optional, up to 128 characters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Resource {
    project: Option<String>,
    session: Option<String>,
}

impl Resource {
    pub fn parse(project: Option<&str>, session: Option<&str>) -> Result<Self, CreditsError> {
        Ok(Self {
            project: project
                .map(|p| bounded("resource.project", p, 0, 128))
                .transpose()?,
            session: session
                .map(|s| bounded("resource.session", s, 0, 128))
                .transpose()?,
        })
    }

    /// A resource read back from storage, where it was validated when written.
    pub(crate) fn stored(project: Option<String>, session: Option<String>) -> Self {
        Self { project, session }
    }

    #[must_use]
    pub fn project(&self) -> Option<&str> {
        self.project.as_deref()
    }

    #[must_use]
    pub fn session(&self) -> Option<&str> {
        self.session.as_deref()
    }
}

/// Why a refund was given: up to 256 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Reason(String);

impl Reason {
    pub fn parse(text: &str) -> Result<Self, CreditsError> {
        bounded("reason", text, 0, 256).map(Self)
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_count_characters() {
        assert!(Operation::parse(&"é".repeat(64)).is_ok());
        assert!(Operation::parse(&"é".repeat(65)).is_err());
        assert!(Operation::parse("").is_err());
        assert!(Operation::parse("a\u{0}b").is_err());
        assert!(Resource::parse(Some(&"p".repeat(128)), None).is_ok());
        assert!(Resource::parse(None, Some(&"s".repeat(129))).is_err());
        assert!(Reason::parse(&"r".repeat(257)).is_err());
    }
}
