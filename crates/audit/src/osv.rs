//! An offline reader for OSV vulnerability databases, and the version orderings their
//! ranges need (PEP 440 for PyPI, SemVer for npm and crates.io).
//!
//! Layouts accepted for a database directory `DIR` (first match wins, per ecosystem):
//!
//! - `DIR/<Ecosystem>/all.zip` — the per-ecosystem export of osv.dev
//!   (`https://osv-vulnerabilities.storage.googleapis.com/<Ecosystem>/all.zip`);
//! - `DIR/<Ecosystem>/*.json` — the same records unzipped;
//! - `DIR/osv-scanner/<Ecosystem>/…` and `DIR/osv-scalibr/<Ecosystem>/…` — osv-scanner's
//!   local cache (`$OSV_SCANNER_LOCAL_DB_CACHE_DIRECTORY`, or the user cache directory).
//!
//! Nothing is downloaded: the audit is offline by design.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use aho_corasick::AhoCorasick;
use rayon::prelude::*;
use serde::Deserialize;

/// Ecosystems the audit can match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ecosystem {
    /// Python packages (poetry.lock, uv.lock, requirements).
    PyPI,
    /// npm packages (package-lock.json).
    Npm,
    /// Rust crates (Cargo.lock).
    CratesIo,
}

impl Ecosystem {
    /// The ecosystem's name in OSV records and directory names.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Ecosystem::PyPI => "PyPI",
            Ecosystem::Npm => "npm",
            Ecosystem::CratesIo => "crates.io",
        }
    }

    /// Normalize a package name for comparison (PEP 503 for PyPI; exact otherwise).
    #[must_use]
    pub fn normalize(self, name: &str) -> String {
        match self {
            Ecosystem::PyPI => crate::rules::scan::normalize_pypi_name(name),
            _ => name.to_string(),
        }
    }

    /// Compare two versions in this ecosystem's ordering (`None`: unparseable).
    #[must_use]
    pub fn compare(self, a: &str, b: &str) -> Option<Ordering> {
        match self {
            Ecosystem::PyPI => Some(Pep440::parse(a)?.cmp(&Pep440::parse(b)?)),
            _ => Some(SemVer::parse(a)?.cmp(&SemVer::parse(b)?)),
        }
    }
}

/// One event of an affected range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Vulnerable from this version on (`"0"`: from the start).
    Introduced(String),
    /// Fixed in this version.
    Fixed(String),
    /// Vulnerable up to and including this version.
    LastAffected(String),
    /// Not vulnerable from this version on (a branch limit).
    Limit(String),
}

impl Event {
    fn version(&self) -> &str {
        match self {
            Event::Introduced(v) | Event::Fixed(v) | Event::LastAffected(v) | Event::Limit(v) => v,
        }
    }
}

/// The affected versions of one package in one advisory.
#[derive(Clone, Debug, Default)]
pub struct Affected {
    /// Normalized package name.
    pub name: String,
    /// `ECOSYSTEM` / `SEMVER` ranges' events (GIT ranges are dropped).
    pub ranges: Vec<Vec<Event>>,
    /// Explicitly listed affected versions.
    pub versions: Vec<String>,
}

/// One advisory, reduced to what matching and reporting need.
#[derive(Clone, Debug, Default)]
pub struct Advisory {
    /// `GHSA-…`, `PYSEC-…`, `RUSTSEC-…`.
    pub id: String,
    /// Other ids of the same advisory (CVE, GHSA, …).
    pub aliases: Vec<String>,
    /// One-line summary (or the start of the details).
    pub summary: String,
    /// `database_specific.severity` when given (`HIGH`, `MODERATE`, …).
    pub severity: Option<String>,
    /// Informational notice (RustSec `unmaintained`, `unsound`), not a vulnerability.
    pub informational: bool,
    /// Affected packages of this ecosystem.
    pub affected: Vec<Affected>,
}

impl Advisory {
    /// Does this advisory affect `name` (normalized) at `version`?
    #[must_use]
    pub fn affects(&self, eco: Ecosystem, name: &str, version: &str) -> bool {
        self.affected
            .iter()
            .filter(|a| a.name == name)
            .any(|a| affected_entry(eco, a, version))
    }

    /// The lowest fixed version above `version` in the ranges that affect it.
    #[must_use]
    pub fn fixed_after(&self, eco: Ecosystem, name: &str, version: &str) -> Option<String> {
        let mut best: Option<String> = None;
        for a in self.affected.iter().filter(|a| a.name == name) {
            for events in &a.ranges {
                if !range_affects(eco, events, version) {
                    continue;
                }
                for e in events {
                    if let Event::Fixed(f) = e
                        && eco.compare(f, version) == Some(Ordering::Greater)
                        && best
                            .as_deref()
                            .is_none_or(|b| eco.compare(f, b) == Some(Ordering::Less))
                    {
                        best = Some(f.clone());
                    }
                }
            }
        }
        best
    }
}

fn affected_entry(eco: Ecosystem, a: &Affected, version: &str) -> bool {
    a.versions
        .iter()
        .any(|v| v == version || eco.compare(v, version) == Some(Ordering::Equal))
        || a.ranges.iter().any(|r| range_affects(eco, r, version))
}

/// OSV's range evaluation: walk the events in version order; introduced turns
/// "affected" on, fixed / limit (at or below the version) and last_affected (below it)
/// turn it off.
#[must_use]
pub fn range_affects(eco: Ecosystem, events: &[Event], version: &str) -> bool {
    let mut sorted: Vec<&Event> = events.iter().collect();
    // "0" sorts first; unparseable versions make the whole range unusable.
    let key_ok = sorted
        .iter()
        .all(|e| e.version() == "0" || eco.compare(e.version(), e.version()).is_some());
    if !key_ok || eco.compare(version, version).is_none() {
        return false;
    }
    sorted.sort_by(|a, b| match (a.version(), b.version()) {
        ("0", "0") => Ordering::Equal,
        ("0", _) => Ordering::Less,
        (_, "0") => Ordering::Greater,
        (x, y) => eco.compare(x, y).unwrap_or(Ordering::Equal),
    });
    let ge = |x: &str| x == "0" || eco.compare(version, x).is_some_and(|o| o != Ordering::Less);
    let mut affected = false;
    for e in sorted {
        match e {
            Event::Introduced(x) => {
                if ge(x) {
                    affected = true;
                }
            }
            Event::Fixed(x) | Event::Limit(x) => {
                if ge(x) {
                    affected = false;
                }
            }
            Event::LastAffected(x) => {
                if eco.compare(version, x) == Some(Ordering::Greater) {
                    affected = false;
                }
            }
        }
    }
    affected
}

// ---------------------------------------------------------------------------------------
// Reading the database

#[derive(Deserialize)]
struct RawVuln {
    id: String,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    details: Option<String>,
    #[serde(default)]
    withdrawn: Option<String>,
    #[serde(default)]
    affected: Vec<RawAffected>,
    #[serde(default)]
    database_specific: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawAffected {
    package: Option<RawPackage>,
    #[serde(default)]
    ranges: Vec<RawRange>,
    #[serde(default)]
    versions: Vec<String>,
    #[serde(default)]
    database_specific: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawPackage {
    ecosystem: String,
    name: String,
}

#[derive(Deserialize)]
struct RawRange {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    events: Vec<RawEvent>,
}

#[derive(Deserialize)]
struct RawEvent {
    introduced: Option<String>,
    fixed: Option<String>,
    last_affected: Option<String>,
    limit: Option<String>,
}

/// Parse one OSV JSON record, keeping only `eco`'s affected packages.
///
/// # Errors
/// The text is not an OSV record.
pub fn parse_record(text: &str, eco: Ecosystem) -> Result<Option<Advisory>, String> {
    let raw: RawVuln = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if raw.withdrawn.is_some() {
        return Ok(None);
    }
    let mut informational = false;
    let mut affected = Vec::new();
    for a in raw.affected {
        let Some(p) = a.package else { continue };
        // `PyPI`, and suffixed variants such as `Debian:12` are other ecosystems.
        if p.ecosystem != eco.as_str() {
            continue;
        }
        if a.database_specific
            .as_ref()
            .and_then(|d| d.get("informational"))
            .is_some_and(|v| !v.is_null())
        {
            informational = true;
        }
        let ranges = a
            .ranges
            .into_iter()
            .filter(|r| r.kind == "ECOSYSTEM" || r.kind == "SEMVER")
            .map(|r| {
                r.events
                    .into_iter()
                    .filter_map(|e| {
                        e.introduced
                            .map(Event::Introduced)
                            .or(e.fixed.map(Event::Fixed))
                            .or(e.last_affected.map(Event::LastAffected))
                            .or(e.limit.map(Event::Limit))
                    })
                    .collect()
            })
            .collect();
        affected.push(Affected {
            name: eco.normalize(&p.name),
            ranges,
            versions: a.versions,
        });
    }
    if affected.is_empty() {
        return Ok(None);
    }
    let summary = raw
        .summary
        .filter(|s| !s.trim().is_empty())
        .or_else(|| {
            raw.details
                .as_deref()
                .and_then(|d| d.lines().find(|l| !l.trim().is_empty()))
                .map(|l| l.trim().chars().take(120).collect())
        })
        .unwrap_or_default();
    let severity = raw
        .database_specific
        .as_ref()
        .and_then(|d| d.get("severity"))
        .and_then(|s| s.as_str())
        .map(str::to_string);
    Ok(Some(Advisory {
        id: raw.id,
        aliases: raw.aliases,
        summary,
        severity,
        informational,
        affected,
    }))
}

/// Where an ecosystem's records are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// An `all.zip` export.
    Zip(PathBuf),
    /// A directory of `*.json` records.
    Dir(PathBuf),
}

/// Find `eco`'s records under `dir` (see the module docs for the layouts).
#[must_use]
pub fn locate(dir: &Path, eco: Ecosystem) -> Option<Source> {
    for base in [
        dir.to_path_buf(),
        dir.join("osv-scanner"),
        dir.join("osv-scalibr"),
    ] {
        let d = base.join(eco.as_str());
        let zip = d.join("all.zip");
        if zip.is_file() {
            return Some(Source::Zip(zip));
        }
        if d.is_dir() {
            return Some(Source::Dir(d));
        }
    }
    None
}

/// Spellings of a package name that may appear in records (`pydantic-core`,
/// `pydantic_core`, `Pydantic-Core` match case-insensitively).
fn name_variants(eco: Ecosystem, name: &str) -> Vec<String> {
    match eco {
        Ecosystem::PyPI => {
            let n = eco.normalize(name);
            vec![n.clone(), n.replace('-', "_"), n.replace('-', ".")]
        }
        _ => vec![name.to_string()],
    }
}

/// Load the advisories of `eco` under `dir` that mention one of `names`.
///
/// # Errors
/// An unreadable or corrupt database (a missing one is `Ok(empty)`).
pub fn load(dir: &Path, eco: Ecosystem, names: &[String]) -> Result<Vec<Advisory>, String> {
    let Some(source) = locate(dir, eco) else {
        return Ok(Vec::new());
    };
    let mut patterns: Vec<String> = names.iter().flat_map(|n| name_variants(eco, n)).collect();
    patterns.sort();
    patterns.dedup();
    let ac = AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(&patterns)
        .map_err(|e| e.to_string())?;
    let wanted: std::collections::HashSet<String> =
        names.iter().map(|n| eco.normalize(n)).collect();
    let keep = |text: &str| -> Option<Advisory> {
        if !ac.is_match(text) {
            return None;
        }
        let adv = parse_record(text, eco).ok()??;
        adv.affected
            .iter()
            .any(|a| wanted.contains(&a.name))
            .then_some(adv)
    };
    let mut out: Vec<Advisory> = match source {
        Source::Dir(d) => {
            let mut paths: Vec<PathBuf> = std::fs::read_dir(&d)
                .map_err(|e| format!("{}: {e}", d.display()))?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            paths.sort();
            paths
                .par_iter()
                .filter_map(|p| std::fs::read_to_string(p).ok())
                .filter_map(|t| keep(&t))
                .collect()
        }
        Source::Zip(z) => {
            let bytes = std::fs::read(&z).map_err(|e| format!("{}: {e}", z.display()))?;
            let entries = zip::entries(&bytes).map_err(|e| format!("{}: {e}", z.display()))?;
            entries
                .par_iter()
                .filter(|e| e.name.ends_with(".json"))
                .filter_map(|e| zip::read(&bytes, e).ok())
                .filter_map(|data| String::from_utf8(data).ok())
                .filter_map(|t| keep(&t))
                .collect()
        }
    };
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// A minimal ZIP reader (central directory, ZIP64, stored and deflated entries): enough
/// for osv.dev's `all.zip` exports.
pub mod zip {
    /// One entry of the central directory.
    #[derive(Clone, Debug)]
    pub struct Entry {
        /// File name inside the archive.
        pub name: String,
        /// 0 = stored, 8 = deflated.
        pub method: u16,
        /// Compressed size.
        pub compressed: u64,
        /// Uncompressed size.
        pub size: u64,
        /// Offset of the local header.
        pub offset: u64,
    }

    /// Largest entry we inflate (a single OSV record is a few KiB).
    const MAX_ENTRY: usize = 64 * 1024 * 1024;

    fn u16_at(b: &[u8], at: usize) -> Option<u16> {
        Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
    }
    fn u32_at(b: &[u8], at: usize) -> Option<u32> {
        Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
    }
    fn u64_at(b: &[u8], at: usize) -> Option<u64> {
        Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
    }

    /// The entries of the archive in `b`.
    ///
    /// # Errors
    /// Not a ZIP archive, or a truncated one.
    pub fn entries(b: &[u8]) -> Result<Vec<Entry>, String> {
        let bad = |what: &str| format!("not a valid zip archive ({what})");
        // End of central directory: the last "PK\x05\x06" within 64 KiB of the end.
        let lo = b.len().saturating_sub(22 + 65_535);
        let eocd = (lo..=b.len().saturating_sub(22))
            .rev()
            .find(|&i| u32_at(b, i) == Some(0x0605_4b50))
            .ok_or_else(|| bad("no end of central directory"))?;
        let mut count = u64::from(u16_at(b, eocd + 10).ok_or_else(|| bad("eocd"))?);
        let mut cd = u64::from(u32_at(b, eocd + 16).ok_or_else(|| bad("eocd"))?);
        if (count == 0xFFFF || cd == 0xFFFF_FFFF) && eocd >= 20 {
            let loc = eocd - 20;
            if u32_at(b, loc) == Some(0x0706_4b50) {
                let rec = usize::try_from(u64_at(b, loc + 8).ok_or_else(|| bad("zip64"))?)
                    .map_err(|_| bad("zip64"))?;
                if u32_at(b, rec) != Some(0x0606_4b50) {
                    return Err(bad("zip64 record"));
                }
                count = u64_at(b, rec + 32).ok_or_else(|| bad("zip64"))?;
                cd = u64_at(b, rec + 48).ok_or_else(|| bad("zip64"))?;
            }
        }
        let mut at = usize::try_from(cd).map_err(|_| bad("offset"))?;
        let mut out = Vec::with_capacity(usize::try_from(count).unwrap_or(0).min(1 << 20));
        for _ in 0..count {
            if u32_at(b, at) != Some(0x0201_4b50) {
                return Err(bad("central directory entry"));
            }
            let method = u16_at(b, at + 10).ok_or_else(|| bad("entry"))?;
            let mut compressed = u64::from(u32_at(b, at + 20).ok_or_else(|| bad("entry"))?);
            let mut size = u64::from(u32_at(b, at + 24).ok_or_else(|| bad("entry"))?);
            let name_len = usize::from(u16_at(b, at + 28).ok_or_else(|| bad("entry"))?);
            let extra_len = usize::from(u16_at(b, at + 30).ok_or_else(|| bad("entry"))?);
            let comment_len = usize::from(u16_at(b, at + 32).ok_or_else(|| bad("entry"))?);
            let mut offset = u64::from(u32_at(b, at + 42).ok_or_else(|| bad("entry"))?);
            let name = b
                .get(at + 46..at + 46 + name_len)
                .ok_or_else(|| bad("name"))?;
            let extra = b
                .get(at + 46 + name_len..at + 46 + name_len + extra_len)
                .ok_or_else(|| bad("extra"))?;
            // ZIP64 extended information: the 64-bit values of the saturated fields.
            let mut e = 0;
            while e + 4 <= extra.len() {
                let id = u16_at(extra, e).unwrap_or(0);
                let len = usize::from(u16_at(extra, e + 2).unwrap_or(0));
                if id == 1 {
                    let mut f = e + 4;
                    for field in [&mut size, &mut compressed, &mut offset] {
                        if *field == 0xFFFF_FFFF {
                            *field = u64_at(extra, f).ok_or_else(|| bad("zip64 extra"))?;
                            f += 8;
                        }
                    }
                }
                e += 4 + len;
            }
            out.push(Entry {
                name: String::from_utf8_lossy(name).into_owned(),
                method,
                compressed,
                size,
                offset,
            });
            at += 46 + name_len + extra_len + comment_len;
        }
        Ok(out)
    }

    /// The uncompressed content of `entry`.
    ///
    /// # Errors
    /// Truncated data, an unsupported method or corrupt deflate data.
    pub fn read(b: &[u8], entry: &Entry) -> Result<Vec<u8>, String> {
        let at = usize::try_from(entry.offset).map_err(|_| "offset".to_string())?;
        if u32_at(b, at) != Some(0x0403_4b50) {
            return Err(format!("{}: bad local header", entry.name));
        }
        let n = usize::from(u16_at(b, at + 26).unwrap_or(0));
        let x = usize::from(u16_at(b, at + 28).unwrap_or(0));
        let start = at + 30 + n + x;
        let len = usize::try_from(entry.compressed).map_err(|_| "size".to_string())?;
        let data = b
            .get(start..start.saturating_add(len))
            .ok_or_else(|| format!("{}: truncated", entry.name))?;
        match entry.method {
            0 => Ok(data.to_vec()),
            8 => miniz_oxide::inflate::decompress_to_vec_with_limit(data, MAX_ENTRY)
                .map_err(|e| format!("{}: {e:?}", entry.name)),
            m => Err(format!(
                "{}: unsupported compression method {m}",
                entry.name
            )),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Version orderings

/// A PEP 440 version (epoch, release, pre, post, dev; local labels ignored).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pep440 {
    epoch: u64,
    release: Vec<u64>,
    /// (phase, n): dev-only release = (-1, 0), a = 0, b = 1, rc = 2, final = 3.
    pre: (i8, u64),
    /// None sorts before any post release.
    post: Option<u64>,
    /// None sorts after any dev release.
    dev: Option<u64>,
}

impl Pep440 {
    /// Parse a version (`1.2.3`, `2!1.0`, `1.0rc1`, `1.0.post2`, `1.0.dev3`, `v1.0+local`).
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase();
        let s = s.strip_prefix('v').unwrap_or(&s);
        let s = s.split('+').next().unwrap_or("");
        let (epoch, rest) = match s.split_once('!') {
            Some((e, r)) => (e.parse().ok()?, r),
            None => (0, s),
        };
        let bytes = rest.as_bytes();
        let mut i = 0;
        let mut release = Vec::new();
        loop {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if start == i {
                return None;
            }
            release.push(rest[start..i].parse().ok()?);
            if i + 1 < bytes.len() && bytes[i] == b'.' && bytes[i + 1].is_ascii_digit() {
                i += 1;
                continue;
            }
            break;
        }
        while release.len() > 1 && release.last() == Some(&0) {
            release.pop();
        }
        let mut tail = &rest[i..];
        let skip_sep = |t: &str| t.trim_start_matches(['.', '-', '_']).to_string();
        let number = |t: &str| -> (u64, usize) {
            let t2 = t.trim_start_matches(['.', '-', '_']);
            let skipped = t.len() - t2.len();
            let digits: String = t2.chars().take_while(char::is_ascii_digit).collect();
            if digits.is_empty() {
                (0, 0)
            } else {
                (digits.parse().unwrap_or(0), skipped + digits.len())
            }
        };
        let mut pre = None;
        let mut post = None;
        let mut dev = None;
        let owned = skip_sep(tail);
        let t = owned.as_str();
        for (word, phase) in [
            ("alpha", 0),
            ("beta", 1),
            ("preview", 2),
            ("pre", 2),
            ("rc", 2),
            ("a", 0),
            ("b", 1),
            ("c", 2),
        ] {
            if let Some(r) = t.strip_prefix(word) {
                let (n, used) = number(r);
                pre = Some((phase, n));
                tail = &tail[tail.len() - r.len() + used..];
                break;
            }
        }
        let owned = skip_sep(tail);
        let t = owned.as_str();
        for word in ["post", "rev", "r"] {
            if let Some(r) = t.strip_prefix(word) {
                let (n, used) = number(r);
                post = Some(n);
                tail = &tail[tail.len() - r.len() + used..];
                break;
            }
        }
        if post.is_none()
            && let Some(r) = tail.strip_prefix('-')
            && r.starts_with(|c: char| c.is_ascii_digit())
        {
            let (n, used) = number(r);
            post = Some(n);
            tail = &r[used..];
        }
        let owned = skip_sep(tail);
        let t = owned.as_str();
        if let Some(r) = t.strip_prefix("dev") {
            let (n, used) = number(r);
            dev = Some(n);
            tail = &tail[tail.len() - r.len() + used..];
        }
        if !tail.trim().is_empty() {
            return None;
        }
        let pre = match (pre, post, dev) {
            (Some(p), _, _) => p,
            (None, None, Some(_)) => (-1, 0),
            _ => (3, 0),
        };
        Some(Self {
            epoch,
            release,
            pre,
            post,
            dev,
        })
    }
}

impl Ord for Pep440 {
    fn cmp(&self, o: &Self) -> Ordering {
        self.epoch
            .cmp(&o.epoch)
            .then_with(|| crate::rules::scan::cmp_numeric(&self.release, &o.release))
            .then_with(|| self.pre.cmp(&o.pre))
            .then_with(|| self.post.cmp(&o.post))
            .then_with(|| match (self.dev, o.dev) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(a), Some(b)) => a.cmp(&b),
            })
    }
}

impl PartialOrd for Pep440 {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

/// A SemVer 2.0 version (missing minor/patch read as 0; build metadata ignored).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SemVer {
    core: [u64; 3],
    pre: Vec<String>,
}

impl SemVer {
    /// Parse `1.2.3`, `v1.2`, `1.2.3-beta.1+build`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let s = s.strip_prefix('v').unwrap_or(s);
        let s = s.split('+').next().unwrap_or("");
        let (core, pre) = match s.split_once('-') {
            Some((c, p)) => (c, p.split('.').map(str::to_string).collect()),
            None => (s, Vec::new()),
        };
        let mut parts = [0u64; 3];
        let mut n = 0;
        for (i, p) in core.split('.').enumerate() {
            if i >= 3 {
                return None;
            }
            parts[i] = p.parse().ok()?;
            n += 1;
        }
        (n > 0).then_some(Self { core: parts, pre })
    }
}

impl Ord for SemVer {
    fn cmp(&self, o: &Self) -> Ordering {
        self.core
            .cmp(&o.core)
            .then_with(|| match (self.pre.is_empty(), o.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => {
                    for (a, b) in self.pre.iter().zip(&o.pre) {
                        let c = match (a.parse::<u64>(), b.parse::<u64>()) {
                            (Ok(x), Ok(y)) => x.cmp(&y),
                            (Ok(_), Err(_)) => Ordering::Less,
                            (Err(_), Ok(_)) => Ordering::Greater,
                            (Err(_), Err(_)) => a.cmp(b),
                        };
                        if c != Ordering::Equal {
                            return c;
                        }
                    }
                    self.pre.len().cmp(&o.pre.len())
                }
            })
    }
}

impl PartialOrd for SemVer {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lt(a: &str, b: &str) {
        assert_eq!(
            Ecosystem::PyPI.compare(a, b),
            Some(Ordering::Less),
            "{a} < {b}"
        );
    }

    #[test]
    fn pep440_orders_like_pip() {
        let order = [
            "1.0.dev1",
            "1.0a1",
            "1.0a2.dev1",
            "1.0a2",
            "1.0b1",
            "1.0rc1",
            "1.0",
            "1.0.post1",
            "1.0.1",
            "1.1",
            "2!0.1",
        ];
        for w in order.windows(2) {
            lt(w[0], w[1]);
        }
        assert_eq!(
            Ecosystem::PyPI.compare("1.0", "1.0.0"),
            Some(Ordering::Equal)
        );
        assert_eq!(
            Ecosystem::PyPI.compare("1.0-1", "1.0.post1"),
            Some(Ordering::Equal)
        );
        assert_eq!(
            Ecosystem::PyPI.compare("v2.31.0+local", "2.31.0"),
            Some(Ordering::Equal)
        );
        assert!(Pep440::parse("not-a-version").is_none());
    }

    #[test]
    fn semver_orders_prereleases() {
        let order = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.2",
            "1.10.0",
        ];
        for w in order.windows(2) {
            assert_eq!(
                Ecosystem::Npm.compare(w[0], w[1]),
                Some(Ordering::Less),
                "{w:?}"
            );
        }
    }

    #[test]
    fn ranges_follow_the_osv_algorithm() {
        let ev = vec![
            Event::Introduced("0".into()),
            Event::Fixed("1.5".into()),
            Event::Introduced("2.0".into()),
            Event::LastAffected("2.3".into()),
        ];
        let eco = Ecosystem::PyPI;
        assert!(range_affects(eco, &ev, "1.2"));
        assert!(!range_affects(eco, &ev, "1.5"));
        assert!(!range_affects(eco, &ev, "1.9"));
        assert!(range_affects(eco, &ev, "2.3"));
        assert!(!range_affects(eco, &ev, "2.3.1"));
    }

    fn stored_zip(files: &[(&str, &[u8], bool)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut cd = Vec::new();
        for (name, data, deflate) in files {
            let body = if *deflate {
                miniz_oxide::deflate::compress_to_vec(data, 6)
            } else {
                data.to_vec()
            };
            let offset = out.len() as u32;
            let method: u16 = if *deflate { 8 } else { 0 };
            out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
            out.extend_from_slice(&[20, 0, 0, 0]);
            out.extend_from_slice(&method.to_le_bytes());
            out.extend_from_slice(&[0; 8]); // time, date, crc
            out.extend_from_slice(&(body.len() as u32).to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&body);
            cd.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
            cd.extend_from_slice(&[20, 0, 20, 0, 0, 0]);
            cd.extend_from_slice(&method.to_le_bytes());
            cd.extend_from_slice(&[0; 8]);
            cd.extend_from_slice(&(body.len() as u32).to_le_bytes());
            cd.extend_from_slice(&(data.len() as u32).to_le_bytes());
            cd.extend_from_slice(&(name.len() as u16).to_le_bytes());
            cd.extend_from_slice(&[0; 12]); // extra, comment, disk, attrs
            cd.extend_from_slice(&offset.to_le_bytes());
            cd.extend_from_slice(name.as_bytes());
        }
        let cd_offset = out.len() as u32;
        out.extend_from_slice(&cd);
        out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&(files.len() as u16).to_le_bytes());
        out.extend_from_slice(&(files.len() as u16).to_le_bytes());
        out.extend_from_slice(&(cd.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_offset.to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out
    }

    const RECORD: &str = r#"{"id":"GHSA-test-0001","aliases":["CVE-2099-0001"],"summary":"Template injection","affected":[{"package":{"ecosystem":"PyPI","name":"Jinja2"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"3.1.3"}]}]}],"database_specific":{"severity":"MODERATE"}}"#;

    #[test]
    fn reads_zip_databases_in_the_osv_scanner_layout() {
        let dir = tempfile::tempdir().unwrap();
        let eco_dir = dir.path().join("osv-scanner/PyPI");
        std::fs::create_dir_all(&eco_dir).unwrap();
        let other =
            r#"{"id":"PYSEC-0","affected":[{"package":{"ecosystem":"PyPI","name":"other"}}]}"#;
        let zip = stored_zip(&[
            ("GHSA-test-0001.json", RECORD.as_bytes(), true),
            ("PYSEC-0.json", other.as_bytes(), false),
        ]);
        std::fs::write(eco_dir.join("all.zip"), zip).unwrap();
        let found = load(dir.path(), Ecosystem::PyPI, &["jinja2".into()]).unwrap();
        assert_eq!(found.len(), 1);
        let a = &found[0];
        assert_eq!(a.id, "GHSA-test-0001");
        assert_eq!(a.severity.as_deref(), Some("MODERATE"));
        assert!(a.affects(Ecosystem::PyPI, "jinja2", "3.1.2"));
        assert!(!a.affects(Ecosystem::PyPI, "jinja2", "3.1.3"));
        assert_eq!(
            a.fixed_after(Ecosystem::PyPI, "jinja2", "3.1.2").as_deref(),
            Some("3.1.3")
        );
        assert!(
            load(dir.path(), Ecosystem::Npm, &["x".into()])
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn rejects_garbage_zips() {
        assert!(zip::entries(b"hello").is_err());
    }
}
