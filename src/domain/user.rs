//! Users: who they are and what they may be.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use super::product::Invalid;

/// An email address: 3..=254 ASCII characters, one `@` with a non-empty local part
/// (at most 64) and a dotted domain. Kept as sent; compared case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// An email address: a local part, one @ and a domain of dotted labels, kept as sent.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let email = raw;
        let invalid = || {
            Invalid::new(
                "invalid_email",
                "must be an email address such as ana@example.com",
            )
        };
        if !(3..=254).contains(&email.len()) || !email.is_ascii() {
            return Err(invalid());
        }
        let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
        let printable = |s: &str| s.bytes().all(|b| b.is_ascii_graphic() && b != b'@');
        let labels_ok = domain
            .split('.')
            .all(|label| !label.is_empty() && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
        if local.is_empty() || local.len() > 64 || !printable(local) || !domain.contains('.') || !labels_ok {
            return Err(invalid());
        }
        Ok(Email(email.to_owned()))
    }

    /// The address's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form uniqueness and look-ups use.
    pub fn normalized(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

/// A password as typed: 8..=128 characters. Never printed.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// The shortest password accepted, in characters.
    pub const MIN_CHARS: usize = 8;
    /// The longest password accepted, in characters.
    pub const MAX_CHARS: usize = 128;

    /// The rule for new passwords (registration, user creation). No NUL: no text field takes
    /// one, and a password that has one could never be typed at login.
    pub fn new_password(raw: String) -> Result<Self, Invalid> {
        if raw.contains('\0') {
            return Err(Invalid::new("invalid_character", "must not contain NUL"));
        }
        let chars = raw.chars().count();
        if chars < Self::MIN_CHARS {
            return Err(Invalid::new("too_short", "must be at least 8 characters"));
        }
        if chars > Self::MAX_CHARS {
            return Err(Invalid::new("too_long", "must be at most 128 characters"));
        }
        Ok(Password(raw))
    }

    /// A password offered at login: checked against the hash whatever its length, so a length
    /// rule cannot tell an attacker anything the hash comparison would not.
    pub fn offered(raw: String) -> Self {
        Password(raw)
    }

    /// The password's text, for hashing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Reads the catalogue.
    Customer,
    /// Manages products and stock.
    Staff,
    /// Manages users too.
    Admin,
}

impl Role {
    /// The role's name on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Staff => "staff",
            Role::Customer => "customer",
        }
    }

    /// Staff and admins manage the catalogue and the stock.
    pub fn can_write_catalogue(self) -> bool {
        matches!(self, Role::Staff | Role::Admin)
    }
}

impl FromStr for Role {
    type Err = Invalid;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "staff" => Ok(Role::Staff),
            "customer" => Ok(Role::Customer),
            _ => Err(Invalid::new("invalid_role", "must be admin, staff or customer")),
        }
    }
}

/// An account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user's id.
    pub id: i64,
    /// The login email.
    pub email: Email,
    /// What the user may do.
    pub role: Role,
    /// A disabled user cannot log in or refresh.
    pub disabled: bool,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
}

/// An admin's change to a user: `None` leaves a field alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserChange {
    /// A new role.
    pub role: Option<Role>,
    /// Disable or enable the account.
    pub disabled: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_validated_and_compared_without_case() {
        let email = Email::parse("Ana.Pérez@example.com");
        assert!(email.is_err(), "non-ASCII is refused");
        assert!(
            Email::parse(" ana@example.com").is_err(),
            "white space is refused"
        );
        let email = Email::parse("Ana+shop@Example.COM").unwrap();
        assert_eq!(email.as_str(), "Ana+shop@Example.COM");
        assert_eq!(email.normalized(), "ana+shop@example.com");
        for bad in [
            "",
            "a",
            "@example.com",
            "ana@",
            "ana@example",
            "ana@@example.com",
            "a b@example.com",
            "ana@exa mple.com",
            "ana@.com",
            "ana@example..com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(65))).is_err());
    }

    #[test]
    fn lookalikes_that_databases_fold_control_characters_and_huge_emails_are_refused() {
        for bad in [
            "v\u{130}ctim@example.com",  // İ: PostgreSQL's lower() folds it to i
            "\u{212a}elvin@example.com", // the Kelvin sign: lower() gives k
            "vic\u{0}tim@example.com",
            "victim@exa\u{0}mple.com",
            "vic\ttim@example.com",
            "victim\u{7f}@example.com",
            "victim@example.com\n",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        let huge = format!("{}@example.com", "a".repeat(900_000));
        assert!(Email::parse(&huge).is_err());
        let longest = format!(
            "{}@{}.com",
            "a".repeat(64),
            "b".repeat(63) + "." + &"c".repeat(121)
        );
        assert_eq!(longest.len(), 254);
        assert!(Email::parse(&longest).is_ok());
        assert!(Email::parse(&format!("{longest}m")).is_err());
    }

    #[test]
    fn new_passwords_are_8_to_128_characters() {
        assert!(Password::new_password("1234567".into()).is_err());
        assert!(Password::new_password("12345678".into()).is_ok());
        assert!(Password::new_password("é".repeat(128)).is_ok());
        assert!(Password::new_password("é".repeat(129)).is_err());
        assert!(Password::new_password("long-enough\u{0}".into()).is_err());
        assert_eq!(
            format!("{:?}", Password::offered("hunter22".into())),
            "Password(<redacted>)"
        );
    }

    #[test]
    fn roles_parse_exactly() {
        assert_eq!("staff".parse::<Role>(), Ok(Role::Staff));
        assert!("Admin".parse::<Role>().is_err());
        assert!(Role::Staff.can_write_catalogue() && !Role::Customer.can_write_catalogue());
    }
}
