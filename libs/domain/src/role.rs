//! What an organization does on the marketplace, and so which calls it may make.

use std::fmt;
use std::str::FromStr;

/// A role an organization holds. An organization may hold several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Role {
    /// Offers what it must get rid of.
    Producer,
    /// Asks for what it needs.
    Buyer,
    /// A recycler or treatment facility: receives waste under its permits.
    Recycler,
    /// Moves material between sites.
    Carrier,
    /// Runs the platform: issues tokens, sees everything.
    Operator,
    /// A service of the platform (matching): reserves quantities of offers.
    Service,
    /// A public body (ADEME, a chamber of commerce, a water agency): publishes how materials are
    /// recycled at the end of their life, which the passports of lots show.
    Institution,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::Producer,
        Role::Buyer,
        Role::Recycler,
        Role::Carrier,
        Role::Operator,
        Role::Service,
        Role::Institution,
    ];

    /// The stable lower-case key used in tokens and on the command line.
    pub fn key(self) -> &'static str {
        match self {
            Role::Producer => "producer",
            Role::Buyer => "buyer",
            Role::Recycler => "recycler",
            Role::Carrier => "carrier",
            Role::Operator => "operator",
            Role::Service => "service",
            Role::Institution => "institution",
        }
    }

    pub fn from_key(key: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.key() == key)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.key())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown role {0:?}: expected one of producer, buyer, recycler, carrier, operator, service, institution"
)]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(text: &str) -> Result<Role, UnknownRole> {
        Role::from_key(text.trim()).ok_or_else(|| UnknownRole(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_goes_through_its_key() {
        for role in Role::ALL {
            assert_eq!(role.key().parse::<Role>(), Ok(role));
        }
        assert!("admin".parse::<Role>().is_err());
    }
}
