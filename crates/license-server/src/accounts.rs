//! The rules for user accounts, shared by the pages, the CLI and the vendor
//! API: what an email address and a new password must look like, and how
//! long an invitation lives.

/// The shortest new password accepted (`init`, `user add`, invitations,
/// password changes).
pub const MIN_PASSWORD_CHARS: usize = 12;

/// How long an invitation link can be used.
pub const INVITATION_TTL_SECS: i64 = 7 * 86_400;

/// Checks a new password: long enough, not absurdly long.
pub fn check_new_password(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!(
            "the password needs at least {MIN_PASSWORD_CHARS} characters"
        ));
    }
    if password.len() > 1024 {
        return Err("the password is longer than 1024 bytes".into());
    }
    Ok(())
}

/// Checks an email address enough to catch typing mistakes; returns it
/// trimmed.
pub fn check_email(email: &str) -> Result<String, String> {
    let e = email.trim();
    let ok = e.len() <= 254
        && e.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.contains('@')
        })
        && !e.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(e.to_owned())
    } else {
        Err(format!(
            "{:?} is not an email address",
            e.chars().take(100).collect::<String>()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_have_a_length_floor_and_ceiling() {
        assert!(check_new_password("eleven char").is_err());
        assert!(check_new_password("twelve chars").is_ok());
        assert!(check_new_password(&"x".repeat(1025)).is_err());
    }

    #[test]
    fn emails_are_checked_loosely() {
        assert_eq!(check_email(" a@b.example ").unwrap(), "a@b.example");
        for bad in [
            "",
            "a",
            "@b.example",
            "a@b",
            "a b@c.example",
            "a@b@c.example",
        ] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
    }
}
