//! Command-line definitions (clap derive). Doc comments are the `--help` text.

use airlock_keys::KeySpec;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// airlock: signed, offline release bundles for PostgreSQL changes.
///
/// A release manager packs and signs a bundle; an operator on an air-gapped host
/// verifies it, asks the database a read-only gate question, and only on READY runs
/// the tiers, all-or-nothing; auditors re-verify archived bundles years later.
///
/// Exit codes: 0 success / gate READY, 1 runtime error, 2 usage error, 3 gate BLOCKED,
/// 4 bundle verification failed, 5 database state check failed, 6 refused by the
/// ledger or deploy lock not acquired, 7 audit UNVERIFIED (nothing failed, but some
/// evidence is missing).
#[derive(Debug, Parser)]
#[command(
    name = "airlock",
    version = crate::VERSION,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Print one JSON document on stdout (errors too) instead of human text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print only errors.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Colour in human output.
    #[arg(long, global = true, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
    /// The project file (airlock.toml: db, trust, gate_role, receipts, lock_timeout),
    /// or `none`. Otherwise AIRLOCK_CONFIG, otherwise the first airlock.toml in this
    /// directory or one above it. Its settings count only where neither a flag nor
    /// the AIRLOCK_* variable gives one; a file another user could have written is
    /// refused.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

pub use crate::style::Color;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a minisign-compatible key pair: PREFIX.key (secret, 0600) and PREFIX.pub;
    /// or, with --from or --pkcs11, PREFIX.pub alone for a key on a token or in
    /// ssh-agent.
    Keygen(KeygenArgs),
    /// Start a bundle source: bundle.toml and example SQL for a gate, probes, two tiers
    /// and a rollback, and a runbook, each file commented. It lints as written.
    New(NewArgs),
    /// Check a source directory: bundle.toml, every named file, every SQL statement.
    Lint(LintArgs),
    /// Lint, then write the signed, deterministic bundle NAME-VERSION.airlock.tar.gz.
    Pack(PackArgs),
    /// Turn a migration history (golang-migrate, dbmate, Flyway, Sqitch, Prisma, diesel,
    /// Atlas, Liquibase, goose, a folder of psql scripts) into a new bundle source,
    /// then lint it.
    Import(ImportArgs),
    /// Add a co-signature to a bundle (atomic rewrite; the bundle id does not change).
    Sign(SignArgs),
    /// Verify a bundle against a trust store: signatures, threshold, hashes, structure,
    /// and the SQL rules (judged once per bundle and build on this host; see --rejudge).
    Verify(VerifyArgs),
    /// Show what a bundle holds (labelled UNVERIFIED without --trust).
    Inspect(InspectArgs),
    /// Verify a bundle fully, then write its files into a new directory.
    Extract(ExtractArgs),
    /// List a verified bundle's runbooks, or print one.
    Runbook(RunbookArgs),
    /// Print the SQL a run would send, from the verified bundle, without extracting:
    /// each tier's files in order (or the rollback's), with the gates and probes on
    /// request.
    Sql(SqlArgs),
    /// Write the release dossier: one self-contained HTML page (no network, no script)
    /// an approver reads before signing and an auditor files after: status, GO/NO-GO
    /// matrix, what changes, locks, what it destroys, how it is undone, who signed and
    /// approved, hashes and how to check them without airlock, runbooks.
    Dossier(DossierArgs),
    /// Approve (ratify) a bundle as an approver: write a signed approval the operator
    /// passes to gate, plan, apply and rehearse with --approval.
    Approve(ApproveArgs),
    /// Ask the target database the bundle's read-only gate questions: READY or BLOCKED.
    Gate(GateArgs),
    /// The GO/NO-GO: every check apply makes, one verdict, apply's exit code. Read-only.
    Plan(PlanArgs),
    /// Run the next tiers, all-or-nothing, after every check held.
    Apply(ApplyArgs),
    /// Undo an applied bundle with its rollback files (idempotent).
    Rollback(RollbackArgs),
    /// Write the receipt of a run that was interrupted after it committed (killed,
    /// power lost) from the ledger, marked as reissued, and record its delivery: what
    /// `audit` needs to tell an interrupted run from a hidden receipt.
    Reissue(ReissueArgs),
    /// Rehearse the whole cycle on a throw-away clone of the target.
    Rehearse(RehearseArgs),
    /// One-time, as a superuser: make the deploy login every later plan, apply,
    /// rollback and rehearse runs on (no superuser, no path to one), and airlock's
    /// ledger for it.
    Setup(SetupArgs),
    /// What the ledger says: each release, and where each release train stands.
    Status(StatusArgs),
    /// SHA-256 fingerprint of the target's user schemas (and rows/data).
    Fingerprint(FingerprintArgs),
    /// Re-verify archived bundles, receipts and the ledger, years later: one verdict.
    Audit(AuditArgs),
    /// A trust store by command: a key's id, the keys a store holds, add a key, revoke
    /// one.
    Trust(TrustArgsGroup),
    /// The whole story on a throw-away database: pack, verify, gate, rehearse, apply, rollback.
    Demo(DemoArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(CompletionsArgs),
    /// Print the manual page airlock(1), or write one page per subcommand into a directory.
    Man(ManArgs),
    /// The tier names of a bundle, one per line, for shell completion of `--through`
    /// (read, not verified: a name to complete, never trusted).
    #[command(name = "__tiers", hide = true)]
    Tiers(TiersArgs),
}

#[derive(Debug, Args)]
pub struct TrustArgsGroup {
    #[command(subcommand)]
    pub command: TrustCommand,
}

#[derive(Debug, Subcommand)]
pub enum TrustCommand {
    /// Print the key id of each .pub file: what `[keys.ID]` in trust.toml names and
    /// what `airlock inspect` and `minisign -V` show.
    Id(TrustIdArgs),
    /// The keys a trust store holds, each with its role, groups, window, revocation and
    /// whether a signature made now counts; the threshold, the store's version and
    /// which root keys signed it.
    #[command(alias = "show")]
    List(TrustListArgs),
    /// Put a public key into a trust store (a directory, made when missing) with its
    /// role and policy. The store is checked as every command reads it before anything
    /// is written; trust.toml's comments and layout are kept.
    #[command(alias = "add-key")]
    Add(TrustAddArgs),
    /// Revoke a key in a trust store: for good, or from a time (`--from`).
    Revoke(TrustRevokeArgs),
    /// Take a key out of a trust store (its .pub file and its trust.toml entry): the
    /// old root keys of a new root set, a key added by mistake. Nothing remembers it,
    /// unlike a revocation. A signed store gets its next version, to be signed again.
    Remove(TrustRemoveArgs),
    /// Set a trust store's threshold (distinct release keys a bundle needs), whether
    /// receipts must be signed, or its rotation: version, root_threshold, expiry.
    Set(TrustSetArgs),
    /// Sign a versioned trust store as it is, with a root key (signatures/KEYID.minisig
    /// in the store): what `trust update` and every command check.
    Sign(TrustSignArgs),
    /// Replace the trust store CURRENT with NEW, atomically, when NEW is a higher
    /// version signed by root_threshold of CURRENT's root keys and of its own; CURRENT
    /// is kept under history/. Anything else: exit 4, nothing replaced.
    Update(TrustUpdateArgs),
}

#[derive(Debug, Args)]
pub struct TrustSignArgs {
    /// The trust store directory to sign (as it is now).
    #[arg(value_name = "STORE")]
    pub store: PathBuf,
    /// A root key's secret key (its .pub is a root key of the store, or of the store
    /// it replaces): a key file, a `pkcs11:` URI or `ssh-agent:SHA256:…`.
    #[arg(long, value_name = "KEY", value_hint = clap::ValueHint::AnyPath)]
    pub key: KeySpec,
    #[command(flatten)]
    pub pass: PassphraseArgs,
}

#[derive(Debug, Args)]
pub struct TrustUpdateArgs {
    /// The new version of the store (a directory: keys, trust.toml, signatures/).
    #[arg(value_name = "NEW")]
    pub new: PathBuf,
    /// The store this host uses now, to be replaced.
    #[arg(
        long,
        env = "AIRLOCK_TRUST",
        hide_env_values = true,
        value_name = "CURRENT"
    )]
    pub trust: PathBuf,
}

#[derive(Debug, Args)]
pub struct TrustSetArgs {
    /// The trust store directory.
    #[arg(value_name = "STORE")]
    pub store: PathBuf,
    /// Distinct release keys of this store a bundle needs (1 or more).
    #[arg(long, value_name = "N")]
    pub threshold: Option<u32>,
    /// Whether apply and rollback need --sign-receipt with an operator key, and audit
    /// fails an unsigned receipt.
    #[arg(long, value_name = "BOOL")]
    pub require_signed_receipts: Option<bool>,
    /// The store's version (with --root-threshold and root keys: a store rotated by
    /// signature).
    #[arg(long, value_name = "N")]
    pub store_version: Option<u64>,
    /// How many root keys must sign the store and the one that replaces it.
    #[arg(long, value_name = "K")]
    pub root_threshold: Option<u32>,
    /// After this time (RFC 3339 or a date) `trust update` no longer accepts the store.
    #[arg(long, value_name = "TIME")]
    pub expires: Option<String>,
}

#[derive(Debug, Args)]
pub struct TrustIdArgs {
    /// The minisign public key files (.pub).
    #[arg(required = true, value_name = "FILE.pub")]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct TrustListArgs {
    /// The trust store: a directory of *.pub files and trust.toml (or one .pub file).
    #[arg(env = "AIRLOCK_TRUST", hide_env_values = true, value_name = "STORE")]
    pub store: PathBuf,
}

/// A key's role in `airlock trust add`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum KeyRoleArg {
    /// Signs bundles; counts toward the threshold.
    Release,
    /// Signs receipts only.
    Operator,
    /// Signs approvals (airlock approve) only.
    Approver,
    /// Signs trust stores (airlock trust sign) only.
    Root,
}

impl From<KeyRoleArg> for crate::trust::Role {
    fn from(r: KeyRoleArg) -> Self {
        match r {
            KeyRoleArg::Release => crate::trust::Role::Release,
            KeyRoleArg::Operator => crate::trust::Role::Operator,
            KeyRoleArg::Approver => crate::trust::Role::Approver,
            KeyRoleArg::Root => crate::trust::Role::Root,
        }
    }
}

#[derive(Debug, Args)]
pub struct TrustAddArgs {
    /// The trust store directory (made when missing).
    #[arg(value_name = "STORE")]
    pub store: PathBuf,
    /// The public key to add (a .pub from `airlock keygen` or `minisign -G`); copied
    /// into the store under its own file name.
    #[arg(value_name = "FILE.pub")]
    pub public_key: PathBuf,
    /// What the key may sign.
    #[arg(long, value_enum, default_value = "release")]
    pub role: KeyRoleArg,
    /// Approver keys: a group the key belongs to, for a bundle's [ratification]
    /// required_groups (repeatable).
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,
    /// Who holds the key (e.g. "Carol Jones, finance"), shown beside its key id.
    #[arg(long, value_name = "TEXT")]
    pub name: Option<String>,
    /// The key counts only from this time (RFC 3339 or a date).
    #[arg(long, value_name = "TIME")]
    pub not_before: Option<String>,
    /// The key is retired from this time (RFC 3339 or a date).
    #[arg(long, value_name = "TIME")]
    pub not_after: Option<String>,
}

#[derive(Debug, Args)]
pub struct TrustRevokeArgs {
    /// The trust store directory.
    #[arg(value_name = "STORE")]
    pub store: PathBuf,
    /// The key id to revoke (`airlock trust list STORE` shows them).
    #[arg(value_name = "KEYID")]
    pub key_id: String,
    /// Revoked from this time only (RFC 3339 or a date): what it signed earlier still
    /// counts with evidence (a ledger row or a signed receipt). Default: for good.
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// Why, for people (shown with the revocation).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct TrustRemoveArgs {
    /// The trust store directory.
    #[arg(value_name = "STORE")]
    pub store: PathBuf,
    /// The key id to take out (`airlock trust list STORE` shows them).
    #[arg(value_name = "KEYID")]
    pub key_id: String,
}

#[derive(Debug, Args)]
pub struct TiersArgs {
    /// The bundle whose tier names to print (nothing for a file that is not a bundle).
    pub bundle: PathBuf,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write airlock.1 and airlock-SUBCOMMAND.1 for every subcommand into this existing
    /// directory instead of printing airlock.1 (the same as --out DIR).
    #[arg(value_name = "DIR", conflicts_with = "out")]
    pub dir: Option<PathBuf>,
    /// The directory to write the pages into (`--out-dir` is an older spelling).
    #[arg(long = "out", alias = "out-dir", value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct PassphraseArgs {
    /// Read the passphrase from this file (first line). Otherwise AIRLOCK_PASSPHRASE,
    /// otherwise a prompt on the terminal. Never given on the command line.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Write PREFIX.key and PREFIX.pub (with --from or --pkcs11: PREFIX.pub alone).
    #[arg(long, value_name = "PREFIX")]
    pub out: PathBuf,
    /// Untrusted comment for the key files (shown by minisign, not signed).
    #[arg(long)]
    pub comment: Option<String>,
    /// Write no secret key: PREFIX.pub for a key that lives elsewhere, a `pkcs11:` URI
    /// (a token's Ed25519 key) or `ssh-agent:SHA256:…` (an Ed25519 key the agent
    /// holds). Its key id is the first 8 bytes of BLAKE2b-512 of the public key.
    #[arg(long, value_name = "KEY", value_hint = clap::ValueHint::AnyPath, conflicts_with_all = ["unencrypted", "pkcs11"])]
    pub from: Option<KeySpec>,
    /// Make the Ed25519 key pair on a PKCS#11 token (sensitive, never extractable)
    /// under the URI's object=/id=, and write PREFIX.pub; then sign with --key URI.
    #[arg(long, value_name = "URI", conflicts_with = "unencrypted")]
    pub pkcs11: Option<KeySpec>,
    /// Do not encrypt the secret key (throw-away and test keys only).
    #[arg(long)]
    pub unencrypted: bool,
    /// Overwrite existing key files.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub pass: PassphraseArgs,
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The new source directory (must not exist, or be empty).
    #[arg(
        value_name = "DIR",
        required_unless_present = "out",
        conflicts_with = "out"
    )]
    pub dir_arg: Option<PathBuf>,
    /// The same as DIR.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The target database, written as [target] database (the name guard).
    #[arg(long, value_name = "NAME")]
    pub database: String,
    /// [bundle] name (default: the directory's name).
    #[arg(long)]
    pub name: Option<String>,
}

impl NewArgs {
    /// The directory to write, however it was named.
    pub fn dir(&self) -> PathBuf {
        self.dir_arg
            .clone()
            .or_else(|| self.out.clone())
            .expect("clap requires DIR or --out")
    }
}

#[derive(Debug, Args)]
pub struct LintArgs {
    /// Source directory holding bundle.toml.
    pub source: PathBuf,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The directory holding the migrations (for Sqitch: the one holding sqitch.plan);
    /// for Flyway, several: its locations, merged in version order.
    #[arg(required = true, num_args = 1..)]
    pub migrations: Vec<PathBuf>,
    /// The new source directory to write (must not exist, or be empty; with --force, a
    /// source directory there is replaced).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The layout of the migrations; by default told from the files (sqitch.plan,
    /// atlas.sum, Prisma's migration_lock.toml or */migration.sql, diesel's */up.sql,
    /// flyway.conf or flyway.toml, *.up.sql, V1__*.sql, `-- +goose Up`, a Liquibase
    /// XML/YAML changelog or `--liquibase formatted sql`, `-- migrate:up`, else a folder
    /// of .sql files in name order). Another tool's markers in a layout that does not
    /// read them, or a Liquibase JSON changelog, are refused (exit 2) and nothing is
    /// written.
    #[arg(long, value_enum)]
    pub from: Option<ImportLayout>,
    /// The target database, written as [target] database.
    #[arg(long, value_name = "NAME")]
    pub database: String,
    /// [bundle] name (default: the migrations directory's name, or, when that is only
    /// `migrations`, `db`, `migrate`, `sql`… (`Migrations`, `db/migrate`), the first
    /// directory's above it that says more; lower-cased, other characters than
    /// `[a-z0-9._-]` made `-`).
    #[arg(long)]
    pub name: Option<String>,
    /// [bundle] version (default: a Liquibase changelog's last `tagDatabase` tag,
    /// else 1).
    #[arg(long, value_name = "VERSION")]
    pub bundle_version: Option<String>,
    /// A template value: each pop `{{ index .Options "KEY" }}` in a migration becomes
    /// VALUE, as pop renders it (e.g. supabase/auth's `--option Namespace=auth`), and so
    /// does each `$%KEY%$` placeholder (a project's own template, e.g.
    /// `--option AUTO_INCREMENT_PRIMARY_KEY="bigserial PRIMARY KEY"`); one left without
    /// a value is refused, named. Repeatable; the report names every file so changed.
    /// For a Liquibase changelog, a property, as Liquibase's `-DKEY=VALUE`: each
    /// `${KEY}` becomes VALUE (e.g. `--option database.defaultSchemaName=public`).
    #[arg(long = "option", value_name = "KEY=VALUE", value_parser = key_value)]
    pub options: Vec<(String, String)>,
    /// Read the peer tool's history table on this database (flyway_schema_history,
    /// schema_migrations, sqitch.changes, Liquibase's databasechangelog, whose
    /// EXECUTED and MARK_RAN rows count as applied; a row naming a changeset the
    /// changelog lacks is refused): the migrations it records as applied are
    /// not written as tiers, and the bundle's preflight checks the table still says
    /// exactly that; a Flyway script whose checksum differs from the one recorded is
    /// refused. Liquibase preconditions of the changesets it lacks are decided on
    /// that database, read-only (a sqlCheck through the door); one about what an
    /// earlier changeset of the import writes needs --fresh-on (docs/sql.md).
    /// airlock's ledger is not touched.
    #[arg(long, value_name = "CONN")]
    pub history: Option<String>,
    /// Decide Liquibase `preConditions` for a fresh database: import makes a
    /// throwaway database on the server CONN names (the role must be allowed to
    /// create databases), runs the changesets there in order, and asks each
    /// precondition of it just before its changeset (onFail MARK_RAN and CONTINUE
    /// leave the changeset out, HALT refuses the import); the database is dropped
    /// whatever happens. The report and bundle.toml say what was decided and why;
    /// the bundle's preflight checks the target is fresh. With --history, the target
    /// decides instead, and the changesets DATABASECHANGELOG records as executed are
    /// replayed here first for what the target cannot answer yet.
    #[arg(long, value_name = "CONN")]
    pub fresh_on: Option<String>,
    /// The root Liquibase changelog, by its path in the migrations directory (as
    /// Liquibase's `--changelog-file` names it on its search path): import reads it
    /// and what it includes, and leaves every other changelog of the folder (named in
    /// the report); it implies `--from liquibase`. By default, the one changelog no
    /// other includes at the folder's top; two such are refused (exit 2) and nothing
    /// is written.
    #[arg(long, value_name = "FILE")]
    pub changelog: Option<String>,
    /// The order of a plain folder of SQL files (no peer tool's layout): `text`, the
    /// names byte by byte, or `version`, each run of digits compared as a number
    /// (`7.1_to_7.2.sql` before `7.10_patch.sql`). By default the names' order, when
    /// both agree; a folder they disagree on is refused (exit 2, naming the first two
    /// files they put the other way round) and nothing is written, since which order
    /// its scripts were applied in is written nowhere.
    #[arg(long, value_enum, value_name = "ORDER")]
    pub order: Option<FolderOrderArg>,
    /// Do not keep Liquibase's own history in step. By default, a Liquibase
    /// changelog's tiers also write the DATABASECHANGELOG rows Liquibase writes for
    /// the changesets they run (in the tier's transaction; the first tier creates the
    /// table when no --history read one), and the rollback removes them, so
    /// `liquibase status` sees the release as applied and `liquibase update` runs
    /// nothing. With this flag the bundle leaves DATABASECHANGELOG alone.
    #[arg(long)]
    pub no_peer_history: bool,
    /// The release this one follows on its train: a bundle an earlier `import` made
    /// from this history (verified with --trust). Only the migrations it and the
    /// releases before it did not carry become tiers; each it carried must be in the
    /// folder as released (an edited one, or a new one sorting before the last
    /// released, is refused by name); `[bundle] sequence` is its plus one, the name
    /// its own unless --name says otherwise, and `[follows]` names it, so `plan` and
    /// `apply` refuse a database where it is not applied. Its policy is carried: params,
    /// gates (every new tier names those its tiers named), ratification, the target's
    /// role and search_path, the team's preflight and verify probes; never tier SQL.
    #[arg(long, value_name = "BUNDLE")]
    pub since: Option<PathBuf>,
    /// Trust store the --since bundle is verified with (as `airlock verify --trust`).
    #[arg(
        long,
        env = "AIRLOCK_TRUST",
        hide_env_values = true,
        value_name = "PATH"
    )]
    pub trust: Option<PathBuf>,
    /// Replace the bundle source directory at --out (one holding bundle.toml, e.g. an
    /// earlier import's): the new source is written beside it and exchanged with it in
    /// one rename once whole, then the old one is removed; an import that fails leaves
    /// it as it was. A file, a link, a directory without bundle.toml, or one holding
    /// the migrations is never replaced (exit 2).
    #[arg(long)]
    pub force: bool,
}

fn key_value(s: &str) -> std::result::Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() && !v.contains("{{") => Ok((k.into(), v.into())),
        _ => Err(format!("`{s}` is not KEY=VALUE")),
    }
}

/// How `import --order` sorts a plain folder's files.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum FolderOrderArg {
    /// The names byte by byte (`7.10_patch.sql` before `7.1_to_7.2.sql`).
    Text,
    /// Runs of digits compared as numbers (`7.1_to_7.2.sql` before `7.10_patch.sql`).
    Version,
}

/// The layouts `import` reads.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ImportLayout {
    /// VERSION_NAME.up.sql / VERSION_NAME.down.sql.
    GolangMigrate,
    /// VERSION_NAME.sql with `-- migrate:up` and `-- migrate:down` sections.
    Dbmate,
    /// V1__NAME.sql, with U1__NAME.sql undo scripts as the rollback.
    Flyway,
    /// sqitch.plan with deploy/, revert/, and verify/ as the verify probe.
    Sqitch,
    /// TIMESTAMP_NAME/migration.sql, with migration_lock.toml.
    Prisma,
    /// VERSION_NAME/up.sql and down.sql.
    Diesel,
    /// VERSION_NAME.sql, checked against atlas.sum.
    Atlas,
    /// A Liquibase XML/YAML changelog (with its includes) or `--liquibase formatted
    /// sql` changelogs: each changeset a tier.
    Liquibase,
    /// VERSION_NAME.sql with `-- +goose Up` and `-- +goose Down` sections.
    Goose,
    /// Temporal's vX.Y/manifest.json folders, each listing its files in order.
    Temporal,
    /// Every .sql file, in name order.
    Folder,
}

#[derive(Debug, Args)]
pub struct PackArgs {
    /// Source directory holding bundle.toml.
    pub source: PathBuf,
    /// Secret key that signs the manifest: a key file, a token's key as an RFC 7512
    /// `pkcs11:` URI (PIN from pin-source=file:… or the terminal; module from
    /// module-path= or AIRLOCK_PKCS11_MODULE), or `ssh-agent:SHA256:…` (an Ed25519 key
    /// the agent holds, by the fingerprint `ssh-add -l` prints).
    #[arg(long, value_name = "KEY", value_hint = clap::ValueHint::AnyPath)]
    pub key: KeySpec,
    /// Output file (default: NAME-VERSION.airlock.tar.gz in the current directory).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// gzip level 1-9. The default, 5, packs about 40% faster than 6 for a bundle
    /// about 1.5% larger (1 GiB of SQL text); 6 is gzip's own default, 7 the smallest.
    #[arg(long, default_value_t = crate::archive::writer::DEFAULT_LEVEL, value_parser = clap::value_parser!(u32).range(1..=9))]
    pub level: u32,
    /// Overwrite an existing output file.
    #[arg(long)]
    pub force: bool,
    /// Carry this signed trust store (a directory with a version, signed by its root
    /// keys: `airlock trust sign`) inside the bundle. Each host's verify, plan, apply
    /// and rehearse install it before judging the bundle, when it is newer than theirs
    /// and their roots approve it: how a revocation reaches hosts with no network.
    #[arg(long, value_name = "DIR")]
    pub trust_update: Option<PathBuf>,
    #[command(flatten)]
    pub pass: PassphraseArgs,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The bundle to co-sign (rewritten in place, atomically).
    pub bundle: PathBuf,
    /// Secret key of the co-signer: a key file, a `pkcs11:` URI or
    /// `ssh-agent:SHA256:…`.
    #[arg(long, value_name = "KEY", value_hint = clap::ValueHint::AnyPath)]
    pub key: KeySpec,
    #[command(flatten)]
    pub pass: PassphraseArgs,
}

#[derive(Debug, Clone, Args)]
pub struct TrustArgs {
    /// Trust store: a directory of minisign *.pub keys with optional trust.toml
    /// (threshold, key validity, revocation), or one .pub file.
    #[arg(
        long,
        env = "AIRLOCK_TRUST",
        hide_env_values = true,
        value_name = "PATH"
    )]
    pub trust: PathBuf,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The bundle file (NAME-VERSION.airlock.tar.gz), verified before anything else.
    pub bundle: PathBuf,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Judge expiry and key validity at this RFC 3339 time instead of now (auditors).
    /// A revocation or a key's not_after that has come stays in force: an earlier
    /// time never revives a key (only `airlock audit` evidence can).
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Judge the SQL rules and hash every chunk again even when this host remembers
    /// that this build of airlock verified this very bundle whole
    /// (AIRLOCK_STATE_DIR/judged). Signatures, every file's SHA-256 and the structure
    /// are checked on every run either way.
    #[arg(long)]
    pub rejudge: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The bundle file (NAME-VERSION.airlock.tar.gz) to show.
    pub bundle: PathBuf,
    /// Trust store; without it the output is labelled UNVERIFIED.
    #[arg(
        long,
        env = "AIRLOCK_TRUST",
        hide_env_values = true,
        value_name = "PATH"
    )]
    pub trust: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ExtractArgs {
    /// The bundle file (NAME-VERSION.airlock.tar.gz), verified before anything else.
    pub bundle: PathBuf,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// New directory to create (must not exist, or be empty). `--to` is an older
    /// spelling of the same flag.
    #[arg(long = "out", alias = "to", value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct SqlArgs {
    /// The bundle file (NAME-VERSION.airlock.tar.gz), verified before anything else.
    pub bundle: PathBuf,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Only the tiers up to and including this one (as `apply --through`).
    #[arg(long, value_name = "TIER", conflicts_with = "rollback")]
    pub through: Option<String>,
    /// The rollback's files instead of the tiers.
    #[arg(long)]
    pub rollback: bool,
    /// With the tiers: the gates and the preflight before them, the verify probe after.
    #[arg(long, conflicts_with = "rollback")]
    pub checks: bool,
}

#[derive(Debug, Args)]
pub struct RunbookArgs {
    /// The bundle file (NAME-VERSION.airlock.tar.gz), verified before anything else.
    pub bundle: PathBuf,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Runbook to print: its file name, path or audience. Without it, list them.
    pub name: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// Connection: libpq key=value string, postgresql:// URL or a bare database name
    /// (as psql takes it). Otherwise AIRLOCK_DB, otherwise PGHOST/PGPORT/PGUSER/
    /// PGPASSWORD/PGDATABASE, Unix socket by default. Without a database name, the
    /// bundle's target.database is used (the name guard refuses any other); a bundle
    /// for a fleet (a pattern or a list) needs the name given.
    #[arg(long, env = "AIRLOCK_DB", hide_env_values = true, value_name = "CONN")]
    pub db: Option<String>,
    /// statement_timeout for every statement airlock runs (e.g. 30s, 5min, 0 = none).
    #[arg(long, default_value = "0", value_name = "DURATION")]
    pub statement_timeout: String,
}

/// The database of `status` and `fingerprint`, which take no bundle.
#[derive(Debug, Clone, Args)]
pub struct ServerDbArgs {
    /// Connection: libpq key=value string, postgresql:// URL or a bare database name
    /// (as psql takes it). Otherwise AIRLOCK_DB, otherwise PGHOST/PGPORT/PGUSER/
    /// PGPASSWORD/PGDATABASE, Unix socket by default. Without a database name anywhere,
    /// libpq's default is used: the user name. The output names the database it read.
    #[arg(long, env = "AIRLOCK_DB", hide_env_values = true, value_name = "CONN")]
    pub db: Option<String>,
    /// statement_timeout for every statement airlock runs (e.g. 30s, 5min, 0 = none).
    #[arg(long, default_value = "0", value_name = "DURATION")]
    pub statement_timeout: String,
}

#[derive(Debug, Clone, Args)]
pub struct ParamArgs {
    /// Bundle parameter NAME=VALUE, readable in SQL as current_setting('airlock.NAME').
    #[arg(long = "param", value_name = "K=V")]
    pub params: Vec<String>,
}

/// Signed approvals for a bundle with `[ratification]`.
#[derive(Debug, Clone, Args)]
pub struct ApprovalArgs {
    /// A signed approval written by `airlock approve` (FILE, with FILE.minisig beside
    /// it), or a directory whose *.approval files are read (again at each poll of
    /// --wait). Repeatable. Approvals count from trust-store keys with role approver,
    /// each for this bundle, its sequence and exactly the params given.
    #[arg(long = "approval", value_name = "FILE|DIR")]
    pub approvals: Vec<PathBuf>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 the page was written (whatever its verdict: a NO-GO or BLOCKED \
release gets a page that says so); 2 usage (an existing --out without --force, a --rehearsal or \
--receipt that is not of this bundle); 4 the bundle does not verify (no page is written about \
a bundle that does not verify)."
)]
pub struct DossierArgs {
    /// The bundle file (NAME-VERSION.airlock.tar.gz), verified before anything else: a
    /// bundle that does not verify gets no page.
    pub bundle: PathBuf,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// The page to write (e.g. dossier.html): a new file, written whole or not at all.
    #[arg(long, value_name = "FILE.html")]
    pub out: PathBuf,
    /// Replace an existing --out file.
    #[arg(long)]
    pub force: bool,
    /// Ask this database what `airlock plan` asks, read-only (the gate now, the ledger,
    /// drift, locks with sizes, predictions, what the release destroys), and put the
    /// answers on the page as of the time asked. Only when given: AIRLOCK_DB is not read
    /// (a page asks a database only when told to).
    #[arg(long, value_name = "CONN")]
    pub db: Option<String>,
    /// With --db: run gates and probes as this role (as `plan --gate-role`; with --db,
    /// AIRLOCK_GATE_ROLE when not given).
    #[arg(long, value_name = "ROLE", requires = "db")]
    pub gate_role: Option<String>,
    /// With --db: how long each read-only question about the data may take (as `plan
    /// --predict-timeout`).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub predict_timeout: std::time::Duration,
    /// A saved `airlock rehearse BUNDLE … --json` of this bundle: its steps, the round
    /// trip back to the entry fingerprint, and the locks it measured (the timeline).
    #[arg(long, value_name = "FILE")]
    pub rehearsal: Option<PathBuf>,
    #[command(flatten)]
    pub approvals: ApprovalArgs,
    /// A receipt `apply` or `rollback` wrote for this bundle (its RECEIPT.minisig beside
    /// it is judged as `audit` judges it): what ran. A directory (e.g. the receipts
    /// directory apply writes to) means every *.receipt.json of this bundle in it.
    /// Repeatable.
    #[arg(long = "receipt", value_name = "FILE|DIR")]
    pub receipts: Vec<PathBuf>,
    #[command(flatten)]
    pub params: ParamArgs,
    /// Judge signatures, expiry and approvals at this time (RFC 3339 or a date) and
    /// state it as the page's time, instead of now: the same inputs and --at write the
    /// same bytes.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The bundle file (NAME-VERSION.airlock.tar.gz) to approve, verified before
    /// anything else.
    pub bundle: PathBuf,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// The approver's secret key (a key file, a `pkcs11:` URI or `ssh-agent:SHA256:…`;
    /// its .pub is in the trust store with role approver).
    #[arg(long, value_name = "KEY", value_hint = clap::ValueHint::AnyPath)]
    pub key: KeySpec,
    /// A param you consent to, NAME=VALUE (e.g. ratified_apr=APR-2026-017). The run
    /// must give exactly the params approved, or the approval does not count.
    #[command(flatten)]
    pub params: ParamArgs,
    /// A note signed with the approval (e.g. the meeting that decided it).
    #[arg(long, value_name = "TEXT")]
    pub comment: Option<String>,
    /// Write the approval to this new file (its signature goes beside it as
    /// FILE.minisig). Default: NAME-VERSION.KEYID.approval in the current directory.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// The approval stops counting after this RFC 3339 time (e.g.
    /// 2026-07-01T00:00:00Z).
    #[arg(long, value_name = "TIME")]
    pub expires: Option<String>,
    /// Do not ask for confirmation on a terminal. Off a terminal airlock never asks.
    #[arg(long, short)]
    pub yes: bool,
    #[command(flatten)]
    pub pass: PassphraseArgs,
}

#[derive(Debug, Args)]
pub struct GateArgs {
    /// The bundle file (NAME-VERSION.airlock.tar.gz), verified before anything else.
    pub bundle: PathBuf,
    #[command(flatten)]
    pub trust: TrustArgs,
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub params: ParamArgs,
    #[command(flatten)]
    pub approvals: ApprovalArgs,
    #[command(flatten)]
    pub gate: GateRoleArgs,
    #[command(flatten)]
    pub wait: WaitArgs,
}

/// Waiting for the gate to open.
#[derive(Debug, Clone, Args)]
pub struct WaitArgs {
    /// Poll the gate read-only until it says READY (a fresh connection and one
    /// rolled-back READ ONLY transaction per poll; no lock is held while waiting), print
    /// each change of verdict with a timestamp, then go on as without --wait. Ends with
    /// exit 3 at --wait-timeout or on Ctrl-C, nothing changed. A server that stops
    /// answering after the first poll (a restart, a failover) is shown as UNREACHABLE
    /// and polled again; a first poll that reaches no server fails at once.
    #[arg(long)]
    pub wait: bool,
    /// Time between polls with --wait: plain seconds or a number with ms, s, m or h
    /// (e.g. 30, 5s, 2m).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration, requires = "wait")]
    pub poll_interval: std::time::Duration,
    /// Give up waiting after this long (exit 3, BLOCKED, nothing changed); e.g. 8h.
    /// Default: wait until READY or Ctrl-C.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "wait")]
    pub wait_timeout: Option<std::time::Duration>,
    /// With --wait, a "still waiting" line (timestamp, verdict, how long, polls) when
    /// nothing was said for this long, so a live wait never looks like a hung one; at
    /// least one poll interval apart; 0 = none.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration, requires = "wait")]
    pub heartbeat: std::time::Duration,
}

/// `30` (seconds), `500ms`, `5s`, `2m`, `1h`.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 30, 5s, 2m, 1h)"))?;
    let ms = match unit.trim() {
        "" | "s" => n.checked_mul(1000),
        "ms" => Some(n),
        "m" | "min" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => None,
    }
    .ok_or_else(|| format!("{text:?} is not a duration (e.g. 30, 5s, 2m, 1h)"))?;
    if ms == 0 {
        return Err(format!("{text:?}: the duration must be more than zero"));
    }
    Ok(std::time::Duration::from_millis(ms))
}

/// Who gates and probes run as.
#[derive(Debug, Args)]
pub struct GateRoleArgs {
    /// Run gates and probes as this role (default: airlock_gate if it exists, else
    /// airlock's own role if that has no powers outside the database). The role must not
    /// be a superuser, have CREATEROLE, run server programs, read or write server files
    /// or use dblink; give it only the grants `airlock plan` derives from the bundle's
    /// gates and probes (never pg_read_all_data), and let the connecting role SET ROLE
    /// to it. On top of parser rules, READ ONLY, row_security off, parallel mode and a
    /// savepoint that is always rolled back. Set it once for every command with
    /// AIRLOCK_GATE_ROLE.
    #[arg(
        long,
        value_name = "ROLE",
        env = "AIRLOCK_GATE_ROLE",
        hide_env_values = true
    )]
    pub gate_role: Option<String>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The bundle file (NAME-VERSION.airlock.tar.gz), verified before anything else.
    pub bundle: PathBuf,
    #[command(flatten)]
    pub trust: TrustArgs,
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub params: ParamArgs,
    #[command(flatten)]
    pub approvals: ApprovalArgs,
    /// Plan only up to and including this tier.
    #[arg(long, value_name = "TIER", value_hint = clap::ValueHint::Other)]
    pub through: Option<String>,
    /// Judge a continuation as `apply --allow-drift` would: a changed schema does not
    /// make the plan NO-GO.
    #[arg(long)]
    pub allow_drift: bool,
    /// Judge a continuation as `apply --resume` would: the INVALID index an
    /// interrupted online step left, proven its own, is not drift.
    #[arg(long)]
    pub resume: bool,
    #[command(flatten)]
    pub gate: GateRoleArgs,
    /// The key `apply --sign-receipt` will sign the receipt with: judged as apply
    /// judges it (a trust store with require_signed_receipts needs an operator key;
    /// without this flag plan says NO-GO, exit 2, as apply would).
    #[arg(long, value_name = "KEY", value_hint = clap::ValueHint::AnyPath)]
    pub sign_receipt: Option<KeySpec>,
    #[command(flatten)]
    pub pass: PassphraseArgs,
    /// How long each read-only question about the data may take (duplicates under a
    /// new unique key, NULLs under a new NOT NULL, rows a new CHECK or foreign key
    /// rejects, rows a DROP/TRUNCATE takes); one cut short is a warning. One that code
    /// a database role attached stops (airlock runs none) makes the plan CANNOT TELL,
    /// exit 8: rehearse the bundle, or have the role remove that code.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub predict_timeout: std::time::Duration,
    /// Plan the rollback instead, on the data there now (read-only): the tiers the
    /// ledger says it undoes, the rollback files that runs, what they destroy (tables
    /// and columns dropped, rows deleted or truncated, rows an ON DELETE CASCADE
    /// takes, counted) and which statements the data would make fail (rows other
    /// tables still reference). NO-GO (exit 1) when one would fail; exit 6 when no
    /// tier of the release is applied here.
    #[arg(long, conflicts_with_all = ["through", "allow_drift", "resume"])]
    pub rollback: bool,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The bundle file (NAME-VERSION.airlock.tar.gz), verified before anything else.
    pub bundle: PathBuf,
    #[command(flatten)]
    pub trust: TrustArgs,
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub params: ParamArgs,
    #[command(flatten)]
    pub approvals: ApprovalArgs,
    /// Stop after this tier; a later apply continues with the next one.
    #[arg(long, value_name = "TIER", value_hint = clap::ValueHint::Other)]
    pub through: Option<String>,
    #[command(flatten)]
    pub deploy: DeployArgs,
    /// Continue even if the schema changed since the previous partial apply.
    #[arg(long)]
    pub allow_drift: bool,
    /// Finish an online step a run left interrupted (killed, its connection lost)
    /// during `CREATE INDEX CONCURRENTLY`: when the only change since the previous
    /// apply is the INVALID index that build left, proven the step's own (its name and
    /// definition, INVALID, built by no session now), the step drops it and builds it
    /// again. Anything else is still drift.
    #[arg(long)]
    pub resume: bool,
    #[command(flatten)]
    pub gate: GateRoleArgs,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The bundle file (NAME-VERSION.airlock.tar.gz), verified before anything else.
    pub bundle: PathBuf,
    #[command(flatten)]
    pub trust: TrustArgs,
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub params: ParamArgs,
    #[command(flatten)]
    pub deploy: DeployArgs,
    #[command(flatten)]
    pub gate: GateRoleArgs,
}

#[derive(Debug, Args)]
pub struct ReissueArgs {
    /// The bundle file whose interrupted runs get their receipts, verified first.
    pub bundle: PathBuf,
    #[command(flatten)]
    pub trust: TrustArgs,
    #[command(flatten)]
    pub db: DbArgs,
    /// Where the reissued receipts go, a directory (created if missing): each is a new
    /// file NAME-VERSION.DATABASE@SYSTEMID.EVENT-SEQ.receipt.json, as apply writes them.
    #[arg(
        long,
        value_name = "DIR",
        env = "AIRLOCK_RECEIPTS",
        hide_env_values = true,
        default_value = "receipts"
    )]
    pub out: PathBuf,
    /// Sign each reissued receipt with this (operator) key: RECEIPT.minisig beside it
    /// (a key file, a `pkcs11:` URI or `ssh-agent:SHA256:…`); the ledger rows it covers
    /// are signed too, in its delivery row (only signed rows are audit evidence).
    #[arg(long, value_name = "KEY", value_hint = clap::ValueHint::AnyPath)]
    pub sign_receipt: Option<KeySpec>,
    #[command(flatten)]
    pub pass: PassphraseArgs,
    /// How long the deploy lock may be waited for (held by an apply or rollback on this
    /// database); then exit 6, nothing written.
    #[arg(
        long,
        env = "AIRLOCK_LOCK_TIMEOUT",
        hide_env_values = true,
        default_value = "10s",
        value_name = "DURATION"
    )]
    pub lock_timeout: String,
}

/// What apply and rollback share: one definition, so their flags cannot drift apart.
#[derive(Debug, Clone, Args)]
pub struct DeployArgs {
    /// Write the receipt (JSON) to this new file instead of the receipts directory.
    #[arg(long, value_name = "FILE", conflicts_with = "receipt_dir")]
    pub receipt: Option<PathBuf>,
    /// Where receipts go, a directory (created if missing): each receipt is a new file
    /// NAME-VERSION.DATABASE@SYSTEMID.EVENT-SEQ.receipt.json, unique across targets.
    /// `--receipt-dir` is an older spelling.
    #[arg(
        long = "out",
        alias = "receipt-dir",
        value_name = "DIR",
        env = "AIRLOCK_RECEIPTS",
        hide_env_values = true,
        default_value = "receipts"
    )]
    pub receipt_dir: PathBuf,
    /// Sign the receipt with this (operator) key: writes RECEIPT.minisig beside it (a
    /// key file, a `pkcs11:` URI or `ssh-agent:SHA256:…`), and signs the ledger rows
    /// the run wrote, kept in the ledger: an audit of the database alone takes only
    /// signed rows as evidence of when a bundle existed.
    #[arg(long, value_name = "KEY", value_hint = clap::ValueHint::AnyPath)]
    pub sign_receipt: Option<KeySpec>,
    #[command(flatten)]
    pub pass: PassphraseArgs,
    /// How long a lock may be waited for: the deploy lock (held by another apply or
    /// rollback on this database), and each bundle statement's locks, so that a
    /// statement waiting behind a long application query does not queue every later
    /// query on its table for long (e.g. 10s, 2min). Then the transaction rolls back
    /// (see --lock-retries); the deploy lock refuses with exit 6 at once.
    #[arg(
        long,
        env = "AIRLOCK_LOCK_TIMEOUT",
        hide_env_values = true,
        default_value = "10s",
        value_name = "DURATION"
    )]
    pub lock_timeout: String,
    /// How many times a transaction (an online step: its statement) whose statement
    /// could not have its lock within --lock-timeout runs again, after a backoff of
    /// 0.5s, 1s, 2s… (at most 30s), naming the sessions with a transaction open each
    /// time; then exit 6 with nothing of it changed.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub lock_retries: u32,
    /// Do not ask for the database name on a terminal (scripts, runs confirmed another
    /// way). Required with `apply --wait` on a terminal: an unattended run must not stop
    /// at a question once the gate opens. Off a terminal airlock never asks.
    #[arg(long, short)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct RehearseArgs {
    /// The bundle file (NAME-VERSION.airlock.tar.gz), verified before anything else.
    pub bundle: PathBuf,
    #[command(flatten)]
    pub trust: TrustArgs,
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub params: ParamArgs,
    #[command(flatten)]
    pub approvals: ApprovalArgs,
    /// Go past a BLOCKED gate on the clone (the default: a rehearsal before
    /// ratification runs the whole cycle on the clone, says so, and reports the gate's
    /// verdict; the target is never touched). Kept for scripts that name it.
    #[arg(long, conflicts_with = "require_ready")]
    pub assume_gates: bool,
    /// Stop at a BLOCKED gate (exit 3) instead of rehearsing past it on the clone.
    #[arg(long)]
    pub require_ready: bool,
    #[command(flatten)]
    pub gate: GateRoleArgs,
    /// How the clone is made. auto (the default): from a pg_dump snapshot (dump) when
    /// the target has other sessions, else CREATE DATABASE … TEMPLATE with file_copy
    /// from 512 MB of data per 1,000 relation files, else wal_log. wal_log and
    /// file_copy (PostgreSQL 15+; older servers copy files) need nobody else connected
    /// to the target: wal_log writes the whole database to the WAL, file_copy copies
    /// files after a checkpoint. dump: pg_dump of one exported snapshot (parallel jobs)
    /// restored with pg_restore, with nobody disconnected; its cost is reported, and the
    /// target is then compared by schema only (its rows are live).
    #[arg(long, value_enum, default_value_t = CloneStrategyArg::Auto)]
    pub clone_strategy: CloneStrategyArg,
    /// How long each of plan's read-only questions about the data may take on the
    /// target before the clone (a statement the data there now makes fail stops the
    /// rehearsal before anything is cloned); one cut short is said, and the clone's
    /// apply judges it.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub predict_timeout: std::time::Duration,
}

/// `--clone-strategy`: the command line's name for
/// [`crate::db::rehearse::cycle::CloneStrategy`] (the database layer knows no clap).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum CloneStrategyArg {
    /// `dump` when the target has other sessions; else `file_copy` for databases of
    /// at least 512 MiB of data per 1,000 relation files, else `wal_log`.
    Auto,
    WalLog,
    FileCopy,
    /// pg_dump of one snapshot, restored: needs nobody to leave the target.
    Dump,
}

impl From<CloneStrategyArg> for crate::db::rehearse::cycle::CloneStrategy {
    fn from(arg: CloneStrategyArg) -> Self {
        match arg {
            CloneStrategyArg::Auto => Self::Auto,
            CloneStrategyArg::WalLog => Self::WalLog,
            CloneStrategyArg::FileCopy => Self::FileCopy,
            CloneStrategyArg::Dump => Self::Dump,
        }
    }
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub db: ServerDbArgs,
    /// Check the ledger's hash chain and report the first broken row.
    #[arg(long)]
    pub verify_chain: bool,
    /// Bundles whose progress to show: with them, a partial apply (`apply --through`)
    /// is shown as k of n tiers with the tiers that remain (the ledger records the
    /// tiers applied, not how many the bundle has), each judged against its release
    /// train as `apply` would judge it. Needs --trust.
    #[arg(value_name = "BUNDLE")]
    pub bundles: Vec<PathBuf>,
    /// The older spelling of a BUNDLE argument (repeatable).
    #[arg(long = "bundle", value_name = "BUNDLE", hide = true)]
    pub bundle_flags: Vec<PathBuf>,
    /// Trust store to verify --bundle with (or AIRLOCK_TRUST).
    #[arg(
        long,
        env = "AIRLOCK_TRUST",
        hide_env_values = true,
        value_name = "PATH"
    )]
    pub trust: Option<PathBuf>,
    /// Make this host forget the ledger head it remembers for this database (airlock
    /// refuses a ledger that lost a row this host saw). Only after a deliberate
    /// restore or rebuild of the database; the head shown now is remembered instead.
    #[arg(long)]
    pub forget_head: bool,
}

/// `airlock setup`: the deploy login, once per database.
#[derive(Debug, Args)]
#[command(
    after_help = "Run it once per database as a superuser, then deploy as the login:\n  \
    airlock setup --db \"dbname=app user=postgres\" --login deployer\n  \
    airlock apply BUNDLE --db \"dbname=app user=deployer\"\n\
The login gets no password here (PASSWORD NULL): map it in pg_hba.conf (peer, cert) or \
give it one (psql: \\password deployer); code that runs as it during an apply cannot \
change it (the apply is refused, rolled back). Add --createdb where it must rehearse. \
Bundle SQL that runs as a role that is no superuser is \
refused on a superuser's login: code it fires (a trigger, a default, a domain, a \
partition key) could switch back to the login and use it."
)]
pub struct SetupArgs {
    #[command(flatten)]
    pub db: ServerDbArgs,
    /// The deploy login to create, or to check and grant when it exists (it must have no
    /// superuser, CREATEROLE, server-file or server-program rights, itself or through a
    /// role it belongs to).
    #[arg(long, value_name = "NAME")]
    pub login: String,
    /// The role bundle SQL runs as, granted to the login: the bundles' `[target] role`.
    /// Default: the database's owner (which must be no superuser).
    #[arg(long, value_name = "ROLE")]
    pub role: Option<String>,
    /// The role gates and probes run as, granted to the login (created NOLOGIN, with no
    /// grants, when missing; `airlock plan` lists the grants it needs). Default:
    /// AIRLOCK_GATE_ROLE (or gate_role in airlock.toml), else airlock_gate.
    #[arg(
        long,
        value_name = "ROLE",
        env = "AIRLOCK_GATE_ROLE",
        hide_env_values = true,
        default_value = "airlock_gate"
    )]
    pub gate_role: String,
    /// Give the login CREATEDB, which `rehearse` needs to clone the target (off by
    /// default: a login that may create databases keeps that power for whoever acts
    /// as it; everything but `rehearse` works without).
    #[arg(long, conflicts_with = "no_createdb")]
    pub createdb: bool,
    /// The default since issue 66 (no CREATEDB); kept so that older scripts run.
    #[arg(long, hide = true)]
    pub no_createdb: bool,
    /// Also make (or check) an auditor's login: it may read airlock's ledger here
    /// (audit, status, dossier --db) and nothing more. Created LOGIN NOINHERIT with no
    /// password (set one, or use your pg_hba rule); an existing one must have no power
    /// beyond its own rights and not be able to act as the deploy login or --role.
    #[arg(long, value_name = "NAME")]
    pub auditor: Option<String>,
}

#[derive(Debug, Args)]
pub struct FingerprintArgs {
    #[command(flatten)]
    pub db: ServerDbArgs,
    /// Add exact per-table row counts.
    #[arg(long)]
    pub rows: bool,
    /// Add per-table content hashes computed in the server (implies --rows): an
    /// order-free sum of 64-bit row hashes, exact against accidents (not against
    /// someone who chooses rows to collide; see --data-strict); and the sequence values
    /// (last_value, is_called) and the bytes of the large objects (SHA-256 each).
    #[arg(long)]
    pub data: bool,
    /// Like --data, but SHA-256 over each table's sorted per-row SHA-256s: collision-
    /// resistant against chosen rows, at the cost of a sort (temporary files).
    #[arg(long, conflicts_with = "data")]
    pub data_strict: bool,
    /// Connections reading tables at once for --rows/--data (all at one snapshot).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// Compare two saved `fingerprint --json` outputs and name the objects that differ
    /// (no database needed). Exit 0 when equal, 5 when they differ.
    #[arg(long, num_args = 2, value_names = ["A.json", "B.json"], conflicts_with_all = ["rows", "data", "data_strict"])]
    pub diff: Option<Vec<std::path::PathBuf>>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Server to create the throw-away demo database on (its dbname is ignored).
    #[arg(long, env = "AIRLOCK_DB", hide_env_values = true, value_name = "CONN")]
    pub db: Option<String>,
    /// Keep the demo database, its two roles (owner, deploy login) and files afterwards.
    #[arg(long)]
    pub keep: bool,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Bundles to audit; a directory means every *.tar.gz in it.
    #[arg(required = true)]
    pub bundles: Vec<PathBuf>,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Judge expiry and key validity at this RFC 3339 time instead of now. Signing
    /// times claimed in signatures are shown, never relied on; a revoked or retired
    /// key counts only when the ledger (--db) or a signed receipt shows the bundle
    /// existed before the revocation or not_after.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Receipts to check, with their RECEIPT.minisig (an unsigned receipt is reported
    /// UNVERIFIED, or FAIL when trust.toml has require_signed_receipts); repeatable. A
    /// directory (e.g. the receipts directory apply writes to) means every
    /// *.receipt.json in it.
    #[arg(long = "receipt", value_name = "FILE|DIR")]
    pub receipts: Vec<PathBuf>,
    /// Also check a target's ledger (read-only): its chain, every row of an audited
    /// bundle matched by a receipt and a bundle, and each receipt naming this database
    /// against it. Repeatable: an archive spanning databases is audited in one run;
    /// receipts of a database not given are reported not checked against a ledger.
    /// With --receipt, a database given here that an audited bundle is for and that no
    /// receipt of that bundle names fails the audit (a tenant the release missed).
    #[arg(long, env = "AIRLOCK_DB", hide_env_values = true, value_name = "CONN")]
    pub db: Vec<String>,
    /// A fleet's databases, found on a server instead of one --db each: every
    /// database on CONN's server that an audited bundle's `[target] database` names or
    /// matches (`tenant_*`) is audited as with --db, and each one no receipt names
    /// fails the audit (with --receipt; without, each one whose ledger has no row of
    /// the bundle). CONN connects to any database there, only to list the others
    /// (default `postgres`). Repeatable, one a server.
    #[arg(long = "fleet", value_name = "CONN")]
    pub fleet: Vec<String>,
    /// A ledger export (`airlock status --db DB --json`, saved) standing in for a
    /// database that is gone: its hash chain is re-verified and receipts naming its
    /// database are checked against it. Never evidence that a bundle existed before a
    /// revocation. Repeatable.
    #[arg(long = "ledger", value_name = "FILE")]
    pub ledgers: Vec<PathBuf>,
}
