//! Container image references (`registry/repo:tag@digest`), shared by Dockerfile and
//! compose rules.

/// A parsed image reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    /// The text as written (after variable expansion when known).
    pub raw: String,
    /// Registry and repository path, without tag or digest (`ghcr.io/org/app`, `python`).
    pub name: String,
    /// The tag, if any (`3.11-slim`).
    pub tag: Option<String>,
    /// The digest, if any (`sha256:…`).
    pub digest: Option<String>,
}

impl ImageRef {
    /// Split `reference` into name, tag and digest. Never fails: odd input keeps its text.
    #[must_use]
    pub fn parse(reference: &str) -> Self {
        let raw = reference.trim();
        let (rest, digest) = match raw.split_once('@') {
            Some((r, d)) => (r, Some(d.to_string())),
            None => (raw, None),
        };
        // A `:` after the last `/` is a tag; one before it is a registry port.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (
                rest[..last_slash + i].to_string(),
                Some(rest[last_slash + i + 1..].to_string()),
            ),
            None => (rest.to_string(), None),
        };
        Self {
            raw: raw.to_string(),
            name,
            tag,
            digest,
        }
    }

    /// The repository without a Docker Hub prefix (`docker.io/library/python` → `python`).
    #[must_use]
    pub fn hub_name(&self) -> &str {
        let n = self.name.as_str();
        let n = n
            .strip_prefix("docker.io/")
            .or_else(|| n.strip_prefix("index.docker.io/"))
            .or_else(|| n.strip_prefix("registry-1.docker.io/"))
            .unwrap_or(n);
        n.strip_prefix("library/").unwrap_or(n)
    }

    /// The last path component (`ghcr.io/org/app` → `app`).
    #[must_use]
    pub fn short_name(&self) -> &str {
        self.name.rsplit('/').next().unwrap_or(&self.name)
    }

    /// `FROM scratch`.
    #[must_use]
    pub fn is_scratch(&self) -> bool {
        self.name == "scratch"
    }

    /// True when the text still holds an unexpanded `$VAR`.
    #[must_use]
    pub fn has_variables(&self) -> bool {
        self.raw.contains('$')
    }

    /// The tag, or `latest` when none and no digest (what Docker would pull).
    #[must_use]
    pub fn effective_tag(&self) -> Option<&str> {
        match (&self.tag, &self.digest) {
            (Some(t), _) => Some(t),
            (None, None) => Some("latest"),
            (None, Some(_)) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_references() {
        let r = ImageRef::parse("localhost:5000/org/app:1.2@sha256:abc");
        assert_eq!(r.name, "localhost:5000/org/app");
        assert_eq!(r.tag.as_deref(), Some("1.2"));
        assert_eq!(r.digest.as_deref(), Some("sha256:abc"));
        assert_eq!(r.short_name(), "app");
        let r = ImageRef::parse("docker.io/library/python");
        assert_eq!(r.hub_name(), "python");
        assert_eq!(r.effective_tag(), Some("latest"));
        let r = ImageRef::parse("localhost:5000/app");
        assert_eq!(r.tag, None);
    }
}
