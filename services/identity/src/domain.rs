//! Parsing at the edge: emails, names and passwords are checked once, here.

use platform::FieldError;

/// An email address, trimmed, with its case-insensitive form for uniqueness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub display: String,
    pub normalized: String,
}

impl Email {
    /// A practical check, not RFC 5322: one `@`, a non-empty local part, a dotted domain, no
    /// spaces or control characters (spaces around it are trimmed), at most 254 characters as
    /// sent (the OpenAPI document's `maxLength`). Delivery proves the rest.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let email = raw.trim();
        let invalid = || FieldError::new("email", "must be an email address like name@example.com");
        if raw.chars().count() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid());
        }
        let (local, domain) = email.rsplit_once('@').ok_or_else(invalid)?;
        let labels_ok = domain.split('.').all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'));
        if local.is_empty() || local.contains('@') || !domain.contains('.') || !labels_ok {
            return Err(invalid());
        }
        Ok(Self { display: email.to_owned(), normalized: email.to_lowercase() })
    }
}

pub const MIN_PASSWORD_CHARS: usize = 8;
/// Argon2 cost grows with input; a bound keeps a megabyte "password" from being a cheap attack.
pub const MAX_PASSWORD_CHARS: usize = 128;

pub fn check_password(field: &str, password: &str) -> Result<(), FieldError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(FieldError::new(field, format!("must be at least {MIN_PASSWORD_CHARS} characters")));
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(FieldError::new(field, format!("must be at most {MAX_PASSWORD_CHARS} characters")));
    }
    Ok(())
}

pub fn parse_name(raw: &str) -> Result<String, FieldError> {
    let name = raw.trim();
    if name.is_empty() || raw.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(FieldError::new("name", "must be 1 to 100 characters"));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_compared_without_case() {
        let e = Email::parse("  Ada.Lovelace@Example.COM ").expect("valid");
        assert_eq!(e.display, "Ada.Lovelace@Example.COM");
        assert_eq!(e.normalized, "ada.lovelace@example.com");
    }

    #[test]
    fn malformed_emails_are_refused() {
        for bad in ["", "no-at", "@example.com", "a@b", "a b@example.com", "a@-x.com", "a@example..com"] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn passwords_need_eight_to_128_characters() {
        assert!(check_password("password", "1234567").is_err());
        assert!(check_password("password", "12345678").is_ok());
        assert!(check_password("password", &"x".repeat(129)).is_err());
        assert!(check_password("password", "ünïcødé!").is_ok());
    }
}
