//! `orchestra secrets`: the project's age-encrypted secret store (`secrets/` beside
//! the manifest). Values go in through stdin or a file, never the command line, and
//! come out only through `get`.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use orchestra_secrets::{Identity, SecretInfo, Store, Version, Who, format_timestamp_ms};
use serde_json::json;

use crate::project;

const SECRETS_HELP: &str = "\
Values are encrypted with age to every recipient in secrets/recipients.txt and kept,
versioned, in secrets/<env>/<NAME>/<N>.age beside orchestra.yaml: commit that directory.
Your identity (private key) is $ORCHESTRA_AGE_KEY_FILE or ~/.config/orchestra/age.key;
never commit it.

Examples:
  orchestra secrets init                          # create your key, print your recipient
  printf %s \"$PASSWORD\" | orchestra secrets set DB_PASSWORD
  orchestra secrets set TLS_KEY --from-file server.key --env prod
  orchestra secrets get DB_PASSWORD               # the value, exactly, on stdout
  orchestra secrets list                          # names, versions, services using them
  orchestra secrets import .env --replace         # store a dotenv file, blank its values
  orchestra secrets recipients add age1...        # give a teammate access (re-encrypts)";

/// `orchestra secrets ...`
#[derive(Debug, Args)]
#[command(after_help = SECRETS_HELP)]
pub struct SecretsArgs {
    /// The manifest file; the store is `secrets/` beside it (default: the nearest orchestra.yaml).
    #[arg(short = 'f', long = "file", value_name = "FILE", global = true)]
    pub file: Option<PathBuf>,
    /// The environment whose secrets these are.
    #[arg(
        long = "env",
        value_name = "ENV",
        default_value = "default",
        global = true
    )]
    pub env: String,
    /// What to do.
    #[command(subcommand)]
    pub command: SecretsCommand,
}

/// The `secrets` subcommands.
#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Create your age identity if missing (mode 0600) and the store; print your recipient.
    #[command(
        after_help = "The identity is $ORCHESTRA_AGE_KEY_FILE or ~/.config/orchestra/age.key; an existing one is never overwritten.\nGive the printed recipient (age1...) to a teammate with access, who runs `orchestra secrets recipients add age1...`."
    )]
    Init,
    /// Store a new version of a secret, read from stdin (or --from-file).
    #[command(
        after_help = "The value is all of stdin, less one trailing newline (so `echo value |` works); --from-file stores the file's bytes exactly.\nThere is no value argument: command lines end up in shell history and process lists.\n\nExamples:\n  printf %s \"$TOKEN\" | orchestra secrets set API_TOKEN\n  orchestra secrets set TLS_KEY --from-file server.key --env prod"
    )]
    Set(SetArgs),
    /// Store a new version (stdin or --from-file), then deploy every service that uses it.
    #[command(
        after_help = "Each service that lists the secret ships as a new revision with its own deploy strategy and verification; a failed verification leaves the old version serving, and `orchestra rollback SERVICE` brings the old version back.

Examples:
  printf %s \"$NEW_KEY\" | orchestra secrets rotate OPENAI_API_KEY --wait"
    )]
    Rotate(RotateArgs),
    /// Write a secret's value to stdout, exactly.
    #[command(
        disable_version_flag = true,
        after_help = "Examples:\n  orchestra secrets get DB_PASSWORD\n  orchestra secrets get DB_PASSWORD --version 2 --env prod > old.txt"
    )]
    Get(GetArgs),
    /// Secrets with their versions, last change and the services using them (never values).
    List(JsonArg),
    /// Remove a secret: `get` no longer reads it; its versions stay for rollback.
    Rm(NameArg),
    /// A secret's versions: when and by whom each was stored.
    History(HistoryArgs),
    /// Store every variable of a dotenv file, reporting the lines it cannot carry.
    #[command(
        after_help = "Understood: KEY=value, `export KEY=value`, # comments, 'single' (literal) and \"double\" quotes (\\n \\\" \\\\ escapes, multi-line), KEY= (empty).\nNot carried (reported with the line): ${VAR} interpolation, names that are not environment variable names.\n\nExamples:\n  orchestra secrets import .env\n  orchestra secrets import .env.prod --env prod --replace"
    )]
    Import(ImportArgs),
    /// Who can read the secrets: list, add or remove age recipients.
    #[command(subcommand)]
    Recipients(RecipientsCommand),
}

/// `secrets recipients ...`
#[derive(Debug, Subcommand)]
pub enum RecipientsCommand {
    /// The recipients in secrets/recipients.txt.
    List(JsonArg),
    /// Add a recipient and re-encrypt every secret to it (needs your access).
    Add(RecipientArg),
    /// Remove a recipient and re-encrypt every secret without it (rotate the values too).
    Rm(RecipientArg),
}

/// `--json`
#[derive(Debug, Args)]
pub struct JsonArg {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// A secret name.
#[derive(Debug, Args)]
pub struct NameArg {
    /// The secret (an environment variable name, e.g. DATABASE_URL).
    #[arg(value_name = "NAME")]
    pub name: String,
}

/// `secrets set`
#[derive(Debug, Args)]
pub struct SetArgs {
    /// The secret (an environment variable name, e.g. DATABASE_URL).
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Read the value from this file (exact bytes) instead of stdin.
    #[arg(long, value_name = "FILE")]
    pub from_file: Option<PathBuf>,
}

/// `secrets rotate`
#[derive(Debug, Args)]
pub struct RotateArgs {
    /// The new value, as for `set`.
    #[command(flatten)]
    pub set: SetArgs,
    /// Wait for the releases to finish, showing progress; exit 1 if one fails.
    #[arg(long)]
    pub wait: bool,
}

/// `secrets get`
#[derive(Debug, Args)]
pub struct GetArgs {
    /// The secret.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// This version instead of the latest (also reads a removed secret's versions).
    #[arg(long, value_name = "N")]
    pub version: Option<u32>,
}

/// `secrets history`
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The secret.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `secrets import`
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The dotenv file.
    #[arg(value_name = "FILE")]
    pub path: PathBuf,
    /// Afterwards rewrite the file as a template: every stored variable becomes `KEY=`.
    #[arg(long)]
    pub replace: bool,
}

/// An age recipient.
#[derive(Debug, Args)]
pub struct RecipientArg {
    /// The recipient (age1...), as `orchestra secrets init` or `age-keygen -y` print it.
    #[arg(value_name = "RECIPIENT")]
    pub recipient: String,
}

struct Ctx {
    manifest: PathBuf,
    store: Store,
    env: String,
}

impl Ctx {
    /// The access log: an event in the project's state.db for every read and
    /// write of a secret: who, what, which version; never the value.
    fn audit(&self, kind: &str, name: &str, version: Option<u32>) {
        let dir = self
            .manifest
            .parent()
            .map(Path::to_owned)
            .unwrap_or_default();
        let who = Who::current();
        let what = match version {
            Some(v) => format!("{name} version {v} ({})", self.env),
            None => format!("{name} ({})", self.env),
        };
        let reason = format!("{what} by {} (uid {})", who.user, who.uid);
        let paths = orchestra_server::paths::Paths::for_project(&dir);
        let done = paths
            .prepare()
            .map_err(|e| e.to_string())
            .and_then(|()| orchestra_state::StateStore::open(&paths.db).map_err(|e| e.to_string()))
            .and_then(|st| {
                st.record_event(None, None, None, kind, &reason)
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = done {
            eprintln!("warning: the access log did not record `{kind}` of {name}: {e}");
        }
    }

    fn key_path() -> anyhow::Result<PathBuf> {
        Ok(orchestra_secrets::default_key_path()?)
    }

    fn identity(&self) -> anyhow::Result<Identity> {
        Ok(Identity::load(&Self::key_path()?)?)
    }

    /// The identity (created if missing) with the store initialised and writable by it.
    fn writer(&self) -> anyhow::Result<Identity> {
        let path = Self::key_path()?;
        let (id, created) = Identity::load_or_init(&path)?;
        if created {
            eprintln!(
                "created age identity {} (recipient {})",
                path.display(),
                id.recipient()
            );
        }
        if self.store.init(&id.recipient())? {
            eprintln!("created {}", self.store.recipients_path().display());
        }
        self.store.check_access(&id)?;
        Ok(id)
    }
}

/// `orchestra secrets ...`
pub fn run(top_file: Option<&Path>, a: SecretsArgs) -> anyhow::Result<ExitCode> {
    let manifest = project::manifest_path(a.file.as_deref().or(top_file))?;
    let dir = manifest.parent().map(Path::to_owned).unwrap_or_default();
    orchestra_secrets::validate_env(&a.env)?;
    let ctx = Ctx {
        manifest,
        store: Store::open(orchestra_secrets::store_dir(&dir)),
        env: a.env,
    };
    match a.command {
        SecretsCommand::Init => init(&ctx),
        SecretsCommand::Set(s) => set(&ctx, &s),
        SecretsCommand::Rotate(r) => rotate(&ctx, &r),
        SecretsCommand::Get(g) => get(&ctx, &g),
        SecretsCommand::List(l) => list(&ctx, l.json),
        SecretsCommand::Rm(r) => {
            ctx.store.rm(&ctx.env, &r.name, &Who::current())?;
            ctx.audit("secret-rm", &r.name, None);
            let kept = ctx.store.info(&ctx.env, &r.name)?.versions;
            println!(
                "{}: removed ({}); its {kept} version{} stay readable with --version N",
                r.name,
                ctx.env,
                plural(kept)
            );
            Ok(ExitCode::SUCCESS)
        }
        SecretsCommand::History(h) => history(&ctx, &h),
        SecretsCommand::Import(i) => import(&ctx, &i),
        SecretsCommand::Recipients(r) => recipients(&ctx, r),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn init(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let path = Ctx::key_path()?;
    let (id, created) = Identity::load_or_init(&path)?;
    if created {
        eprintln!("created age identity {}", path.display());
    } else {
        eprintln!(
            "using the existing age identity {} (not overwritten)",
            path.display()
        );
    }
    if ctx.store.init(&id.recipient())? {
        eprintln!(
            "created {} with your recipient",
            ctx.store.recipients_path().display()
        );
    } else if !ctx.store.is_recipient(&id.recipient())? {
        eprintln!(
            "note: you are not a recipient of {} yet: ask someone with access to run `orchestra secrets recipients add {}`",
            ctx.store.dir().display(),
            id.recipient()
        );
    }
    println!("{}", id.recipient());
    Ok(ExitCode::SUCCESS)
}

fn set(ctx: &Ctx, a: &SetArgs) -> anyhow::Result<ExitCode> {
    orchestra_secrets::validate_name(&a.name)?;
    let value = match &a.from_file {
        Some(f) => orchestra_secrets::Zeroizing::new(
            std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?,
        ),
        None => {
            let mut stdin = std::io::stdin().lock();
            if stdin.is_terminal() {
                eprintln!("Enter the value of {}, then Ctrl-D:", a.name);
            }
            let mut buf = orchestra_secrets::Zeroizing::new(Vec::new());
            stdin
                .read_to_end(&mut buf)
                .context("cannot read the value from stdin")?;
            if buf.last() == Some(&b'\n') {
                buf.pop();
            }
            buf
        }
    };
    ctx.writer()?;
    let n = ctx.store.set(&ctx.env, &a.name, &value, &Who::current())?;
    ctx.audit("secret-set", &a.name, Some(n));
    println!("{}: version {n} stored ({})", a.name, ctx.env);
    Ok(ExitCode::SUCCESS)
}

/// `set`, then a deploy of the services that use the secret: rotation is a
/// deploy, verified like one.
fn rotate(ctx: &Ctx, a: &RotateArgs) -> anyhow::Result<ExitCode> {
    let users = usage(ctx).remove(&a.set.name).unwrap_or_default();
    let code = set(ctx, &a.set)?;
    if code != ExitCode::SUCCESS {
        return Ok(code);
    }
    if users.is_empty() {
        println!("{}: no service uses it; nothing to deploy", a.set.name);
        return Ok(ExitCode::SUCCESS);
    }
    ctx.audit(
        "secret-rotate",
        &a.set.name,
        ctx.store.latest(&ctx.env, &a.set.name)?,
    );
    println!("{}: deploying {}", a.set.name, users.join(", "));
    let args = crate::args::DeployArgs {
        services: users,
        strategy: None,
        wait: a.wait,
        environment: (ctx.env != "default").then(|| ctx.env.clone()),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(crate::deploy::deploy(Some(&ctx.manifest), &args))
}

fn get(ctx: &Ctx, a: &GetArgs) -> anyhow::Result<ExitCode> {
    let id = ctx.identity()?;
    let version = a.version.map_or(Version::Latest, Version::Number);
    let value = ctx.store.get(&ctx.env, &a.name, version, &id)?;
    let n = match version {
        Version::Number(n) => Some(n),
        Version::Latest => ctx.store.latest(&ctx.env, &a.name)?,
    };
    ctx.audit("secret-get", &a.name, n);
    let mut out = std::io::stdout().lock();
    out.write_all(&value)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Which services use each secret, from the manifest (with the env overlay if it has one).
fn usage(ctx: &Ctx) -> BTreeMap<String, Vec<String>> {
    let env = (ctx.env != "default").then_some(ctx.env.as_str());
    let loaded = orchestra_manifest::load(&ctx.manifest, &project::load_options(env))
        .or_else(|_| orchestra_manifest::load(&ctx.manifest, &project::load_options(None)));
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    match loaded {
        Ok(m) => {
            for s in &m.services {
                for name in &s.secrets {
                    out.entry(name.clone()).or_default().push(s.name.clone());
                }
            }
        }
        Err(_) => eprintln!(
            "warning: {} does not load (see `orchestra validate`): services using each secret are not shown",
            ctx.manifest.display()
        ),
    }
    out
}

fn list(ctx: &Ctx, json: bool) -> anyhow::Result<ExitCode> {
    let secrets = ctx.store.list(&ctx.env)?;
    let mut used = usage(ctx);
    let mut rows: Vec<(Option<SecretInfo>, String, Vec<String>)> = secrets
        .into_iter()
        .map(|s| {
            let by = used.remove(&s.name).unwrap_or_default();
            let name = s.name.clone();
            (Some(s), name, by)
        })
        .collect();
    // Secrets the manifest refers to that the store does not hold.
    rows.extend(used.into_iter().map(|(name, by)| (None, name, by)));
    rows.sort_by(|a, b| a.1.cmp(&b.1));
    if json {
        let doc: Vec<_> = rows
            .iter()
            .map(|(s, name, by)| {
                json!({
                    "name": name,
                    "env": ctx.env,
                    "stored": s.is_some(),
                    "versions": s.as_ref().map_or(0, |s| s.versions),
                    "latest": s.as_ref().and_then(|s| s.latest),
                    "removed": s.as_ref().is_some_and(|s| s.removed),
                    "updated_at_ms": s.as_ref().and_then(|s| s.updated_at_ms),
                    "updated_at": s.as_ref().and_then(|s| s.updated_at_ms).map(format_timestamp_ms),
                    "used_by": by,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        eprintln!(
            "no secrets in env `{}` of {} (store one with `orchestra secrets set NAME`)",
            ctx.env,
            ctx.store.dir().display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let width = rows.iter().map(|r| r.1.len()).max().unwrap_or(4).max(4);
    println!(
        "{:width$}  {:>8}  {:>6}  {:20}  USED BY",
        "NAME", "VERSIONS", "LATEST", "UPDATED"
    );
    for (s, name, by) in &rows {
        let (versions, latest, updated) = match s {
            Some(s) => (
                s.versions.to_string(),
                match (s.removed, s.latest) {
                    (true, _) => "removed".to_owned(),
                    (false, Some(l)) => l.to_string(),
                    (false, None) => "-".to_owned(),
                },
                s.updated_at_ms
                    .map(format_timestamp_ms)
                    .unwrap_or_else(|| "-".into()),
            ),
            None => ("0".into(), "missing".into(), "-".into()),
        };
        let by = if by.is_empty() {
            "-".to_owned()
        } else {
            by.join(", ")
        };
        println!("{name:width$}  {versions:>8}  {latest:>6}  {updated:20}  {by}");
    }
    Ok(ExitCode::SUCCESS)
}

fn history(ctx: &Ctx, a: &HistoryArgs) -> anyhow::Result<ExitCode> {
    let info = ctx.store.info(&ctx.env, &a.name)?;
    let versions = ctx.store.history(&ctx.env, &a.name)?;
    if a.json {
        let doc: Vec<_> = versions
            .iter()
            .map(|v| {
                json!({
                    "name": a.name,
                    "env": ctx.env,
                    "version": v.version,
                    "latest": Some(v.version) == info.latest,
                    "created_at_ms": v.created_at_ms,
                    "created_at": v.created_at_ms.map(format_timestamp_ms),
                    "created_by": v.created_by,
                    "file": v.file,
                    "present": v.present,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} ({}){}",
        a.name,
        ctx.env,
        if info.removed { ": removed" } else { "" }
    );
    println!("{:>7}  {:20}  BY", "VERSION", "CREATED");
    for v in &versions {
        let created = v
            .created_at_ms
            .map(format_timestamp_ms)
            .unwrap_or_else(|| "(not recorded)".into());
        let by = v
            .created_by
            .as_ref()
            .map(|w| format!("{} (uid {})", w.user, w.uid))
            .unwrap_or_else(|| "-".into());
        let mark = if !v.present {
            "  [file missing]"
        } else if Some(v.version) == info.latest && !info.removed {
            "  [latest]"
        } else {
            ""
        };
        println!("{:>7}  {created:20}  {by}{mark}", v.version);
    }
    Ok(ExitCode::SUCCESS)
}

fn import(ctx: &Ctx, a: &ImportArgs) -> anyhow::Result<ExitCode> {
    let bytes = orchestra_secrets::Zeroizing::new(
        std::fs::read(&a.path).with_context(|| format!("cannot read {}", a.path.display()))?,
    );
    let text = std::str::from_utf8(&bytes)
        .with_context(|| format!("{} is not UTF-8 text", a.path.display()))?;
    let parsed = orchestra_secrets::parse_dotenv(text);
    for p in &parsed.problems {
        eprintln!(
            "{}:{}: not imported: {}",
            a.path.display(),
            p.line,
            p.message
        );
    }
    let id = if parsed.entries.is_empty() {
        None
    } else {
        Some(ctx.writer()?)
    };
    let who = Who::current();
    for e in &parsed.entries {
        // Importing the same file twice does not pile up identical versions.
        let current = id
            .as_ref()
            .and_then(|id| ctx.store.get(&ctx.env, &e.key, Version::Latest, id).ok());
        if current.as_deref().map(Vec::as_slice) == Some(e.value.as_bytes()) {
            let n = ctx.store.latest(&ctx.env, &e.key)?.unwrap_or(0);
            println!("{}: unchanged (version {n}, {})", e.key, ctx.env);
            continue;
        }
        let n = ctx
            .store
            .set(&ctx.env, &e.key, e.value.as_bytes(), &who)
            .with_context(|| format!("{}:{}: cannot store {}", a.path.display(), e.line, e.key))?;
        println!("{}: version {n} stored ({})", e.key, ctx.env);
    }
    eprintln!(
        "imported {} variable{} from {} into env `{}`{}",
        parsed.entries.len(),
        plural(parsed.entries.len()),
        a.path.display(),
        ctx.env,
        if parsed.problems.is_empty() {
            String::new()
        } else {
            format!(
                "; {} line{} not carried (above)",
                parsed.problems.len(),
                plural(parsed.problems.len())
            )
        }
    );
    if parsed.entries.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    if a.replace {
        let mode = std::fs::metadata(&a.path)
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(0o600);
        let tpl = orchestra_secrets::template(text);
        orchestra_secrets::replace_file(&a.path, tpl.as_bytes(), mode)?;
        eprintln!(
            "rewrote {} as a template: the stored variables are now empty (KEY=){}",
            a.path.display(),
            if parsed.problems.is_empty() {
                ""
            } else {
                "; the lines not carried are left as they were"
            }
        );
    } else {
        eprintln!(
            "the values are still in {}: `--replace` would rewrite it as a template with empty values",
            a.path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn recipients(ctx: &Ctx, cmd: RecipientsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        RecipientsCommand::List(j) => {
            let list = ctx.store.recipients()?;
            let me = Ctx::key_path()
                .ok()
                .and_then(|p| Identity::load(&p).ok())
                .map(|id| id.recipient().to_string());
            if j.json {
                let doc: Vec<_> = list
                    .iter()
                    .map(|r| {
                        let r = r.to_string();
                        json!({ "recipient": r, "you": me.as_deref() == Some(r.as_str()) })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&doc)?);
            } else if list.is_empty() {
                eprintln!(
                    "{} lists no recipients: run `orchestra secrets init`",
                    ctx.store.recipients_path().display()
                );
            } else {
                for r in &list {
                    let r = r.to_string();
                    let you = if me.as_deref() == Some(r.as_str()) {
                        "  (you)"
                    } else {
                        ""
                    };
                    println!("{r}{you}");
                }
            }
        }
        RecipientsCommand::Add(r) => {
            let recipient = orchestra_secrets::parse_recipient(&r.recipient)?;
            let id = ctx.identity()?;
            let n = ctx.store.add_recipient(&recipient, &id)?;
            println!(
                "added {recipient}; re-encrypted {n} file{} to {} recipients",
                plural(n),
                ctx.store.recipients()?.len()
            );
        }
        RecipientsCommand::Rm(r) => {
            let recipient = orchestra_secrets::parse_recipient(&r.recipient)?;
            let id = ctx.identity()?;
            let n = ctx.store.rm_recipient(&recipient, &id)?;
            println!(
                "removed {recipient}; re-encrypted {n} file{} without it. It may still hold copies of the old values: rotate them",
                plural(n)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
