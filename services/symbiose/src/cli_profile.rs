//! Named profiles of the command-line client: `symbiose login --as kehl --token ...` keeps a
//! token and the addresses of the services under a name, in `profiles.toml` of the user's
//! configuration directory, and `symbiose --as kehl <command>` uses them. The file holds
//! tokens, so it is written readable by its owner only, and never printed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use symbiose_eventstore::embedded::disk;

/// Overrides the directory of `profiles.toml` (default: `symbiose/` in the user's
/// configuration directory, `$XDG_CONFIG_HOME` or `~/.config` on Linux).
pub const CONFIG_DIR_ENV: &str = "SYMBIOSE_CONFIG_DIR";
/// The file of the profiles, in the configuration directory.
pub const PROFILES_FILE: &str = "profiles.toml";
/// The server of a profile that names none, and of the client without `--server`.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:50051";
/// Longest profile name, in bytes.
const PROFILE_NAME_BYTES_MAX: usize = 64;
/// Most profiles in one file.
const PROFILES_MAX: usize = 1_000;
/// Largest `profiles.toml` read, in bytes.
const PROFILES_FILE_BYTES_MAX: u64 = 1024 * 1024;
/// The permission bits of the profiles file: it holds tokens.
const PROFILES_FILE_MODE: u32 = 0o600;

/// A token and where the services are, saved under a name.
// No `deny_unknown_fields` here: serde does not support it with `flatten`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// The one-process server, or the address of every service not named below.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    pub token: String,
    /// Each service's address, when they run as processes of their own.
    #[serde(flatten)]
    pub addresses: Addresses,
}

/// The address of each service running as a process of its own; `None` where the profile's
/// server (or `--server`) serves it. The listings process also serves the directory of
/// organizations and the reference data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, clap::Args)]
pub struct Addresses {
    /// The listings process (listings, organizations, tokens, reference data).
    #[arg(long, value_name = "URL")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listings: Option<String>,
    /// The catalog (a `symbiose-catalog` replica).
    #[arg(long, value_name = "URL")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<String>,
    /// The matching process (matches, proposals, deals).
    #[arg(long, value_name = "URL")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matching: Option<String>,
    /// The logistics process (carriers, quotes, shipments, pallets).
    #[arg(long, value_name = "URL")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logistics: Option<String>,
    /// The settlement process (money, invoices).
    #[arg(long, value_name = "URL")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settlement: Option<String>,
    /// The passports process (passports, end-of-life instructions).
    #[arg(long, value_name = "URL")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passports: Option<String>,
}

impl Addresses {
    /// Each address set, with the flag that sets it.
    pub fn named(&self) -> Vec<(&'static str, &str)> {
        [
            ("listings", &self.listings),
            ("catalog", &self.catalog),
            ("matching", &self.matching),
            ("logistics", &self.logistics),
            ("settlement", &self.settlement),
            ("passports", &self.passports),
        ]
        .into_iter()
        .filter_map(|(name, address)| address.as_deref().map(|address| (name, address)))
        .collect()
    }
}

/// The profiles of one file, by name.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfilesFile {
    #[serde(default)]
    profile: BTreeMap<String, Profile>,
}

/// The directory of `profiles.toml`: `SYMBIOSE_CONFIG_DIR` (from `lookup`), else `symbiose/`
/// in the user's configuration directory.
pub fn config_dir(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<PathBuf> {
    match lookup(CONFIG_DIR_ENV).filter(|dir| !dir.is_empty()) {
        Some(dir) => Ok(PathBuf::from(dir)),
        None => dirs::config_dir().map(|dir| dir.join("symbiose")).ok_or_else(|| {
            anyhow::anyhow!("no configuration directory for the profiles: set {CONFIG_DIR_ENV}")
        }),
    }
}

/// Checks a profile name: letters, digits, `-` and `_`, at most 64 bytes.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    let allowed = |character: char| character.is_ascii_alphanumeric() || character == '-' || character == '_';
    if name.is_empty() || name.len() > PROFILE_NAME_BYTES_MAX || !name.chars().all(allowed) {
        anyhow::bail!(
            "--as: {name:?} is not a profile name (letters, digits, '-' and '_', at most {PROFILE_NAME_BYTES_MAX})"
        );
    }
    Ok(())
}

/// Checks that `address` can be a server's URL, naming `flag` if not.
pub fn check_address(flag: &str, address: &str) -> anyhow::Result<()> {
    let uri: tonic::transport::Uri =
        address.parse().map_err(|error| anyhow::anyhow!("--{flag}: {address:?} is not a URL: {error}"))?;
    match uri.scheme_str() {
        Some("http" | "https") if uri.host().is_some() => Ok(()),
        _ => anyhow::bail!("--{flag}: {address:?} is not an http:// or https:// URL"),
    }
}

/// The profile `name` of the file in `dir`.
pub fn find(dir: &Path, name: &str) -> anyhow::Result<Profile> {
    check_name(name)?;
    let profiles = load(dir)?;
    profiles.get(name).cloned().ok_or_else(|| {
        let known: Vec<&str> = profiles.keys().map(String::as_str).collect();
        let known = if known.is_empty() { "none yet".to_owned() } else { known.join(", ") };
        anyhow::anyhow!(
            "--as: no profile {name:?} in {} (profiles: {known}); save one with `symbiose login --as {name} --token <token>`",
            dir.join(PROFILES_FILE).display()
        )
    })
}

/// Every profile of the file in `dir`, by name; none if there is no file yet.
pub fn load(dir: &Path) -> anyhow::Result<BTreeMap<String, Profile>> {
    let path = dir.join(PROFILES_FILE);
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(error) => return Err(anyhow::anyhow!("reading {}: {error}", path.display())),
    };
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(file, PROFILES_FILE_BYTES_MAX + 1), &mut text)
        .map_err(|error| anyhow::anyhow!("reading {}: {error}", path.display()))?;
    if text.len() as u64 > PROFILES_FILE_BYTES_MAX {
        anyhow::bail!("{}: larger than {PROFILES_FILE_BYTES_MAX} bytes", path.display());
    }
    let parsed: ProfilesFile =
        toml::from_str(&text).map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
    Ok(parsed.profile)
}

/// Saves `profile` as `name` in the file in `dir`, replacing one of that name.
pub fn save(dir: &Path, name: &str, profile: Profile) -> anyhow::Result<()> {
    check_name(name)?;
    let mut profiles = load(dir)?;
    profiles.insert(name.to_owned(), profile);
    if profiles.len() > PROFILES_MAX {
        anyhow::bail!("--as: at most {PROFILES_MAX} profiles; remove one with `symbiose logout --as <name>`");
    }
    write(dir, profiles)
}

/// Removes the profile `name` from the file in `dir`; false if there was none.
pub fn remove(dir: &Path, name: &str) -> anyhow::Result<bool> {
    check_name(name)?;
    let mut profiles = load(dir)?;
    if profiles.remove(name).is_none() {
        return Ok(false);
    }
    write(dir, profiles)?;
    Ok(true)
}

/// Writes the file durably (mode 0600): a temporary file, synced, renamed over the old one,
/// then the directory synced, so a crash leaves the old file or the new one, whole.
fn write(dir: &Path, profiles: BTreeMap<String, Profile>) -> anyhow::Result<()> {
    let text = toml::to_string(&ProfilesFile { profile: profiles })?;
    disk::create_dir_all_durably(dir)
        .map_err(|error| anyhow::anyhow!("creating {}: {error}", dir.display()))?;
    let path = dir.join(PROFILES_FILE);
    disk::write_file_durably(&path, text.as_bytes(), PROFILES_FILE_MODE, disk::Existing::Replace)
        .map_err(|error| anyhow::anyhow!("writing {}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_survive_a_round_trip_and_stay_private() {
        let dir = tempfile::tempdir().expect("a directory");
        let config = dir.path().join("nested/symbiose");
        let kehl = Profile {
            server: None,
            token: "eyJ.kehl".to_owned(),
            addresses: Addresses {
                matching: Some("http://127.0.0.1:7002".to_owned()),
                ..Addresses::default()
            },
        };
        save(&config, "kehl", kehl.clone()).expect("saved");
        save(&config, "strasbourg", Profile { token: "eyJ.sxb".to_owned(), ..Profile::default() })
            .expect("saved");
        assert_eq!(find(&config, "kehl").expect("found"), kehl);
        assert_eq!(load(&config).expect("loaded").len(), 2);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(config.join(PROFILES_FILE)).expect("the file").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(remove(&config, "kehl").expect("removed"));
        assert!(!remove(&config, "kehl").expect("nothing to remove"));
        let missing = find(&config, "kehl").expect_err("gone").to_string();
        assert!(missing.contains("no profile \"kehl\"") && missing.contains("strasbourg"), "{missing}");
    }

    #[test]
    fn names_and_addresses_are_checked() {
        for good in ["kehl", "Kehl-2", "op_1"] {
            check_name(good).expect(good);
        }
        for bad in ["", "k e", "a/b", "é", &"x".repeat(65)] {
            assert!(check_name(bad).expect_err(bad).to_string().starts_with("--as: "), "{bad}");
        }
        check_address("matching", "http://127.0.0.1:7002").expect("a URL");
        let error = check_address("matching", "127.0.0.1:7002").expect_err("no scheme").to_string();
        assert!(error.starts_with("--matching: "), "{error}");
    }

    #[test]
    fn the_config_directory_can_be_set() {
        let dir = config_dir(|key| (key == CONFIG_DIR_ENV).then(|| "/tmp/symbiose-profiles".to_owned()))
            .expect("a directory");
        assert_eq!(dir, PathBuf::from("/tmp/symbiose-profiles"));
    }
}
