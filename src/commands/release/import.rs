//! `airlock import`: a migration history as a new bundle source (`airlock_bundle::
//! import`), then `lint` on what was written, so the report says at once what is left
//! to fix.

use crate::cli::{FolderOrderArg, ImportArgs, ImportLayout};
use crate::error::{Error, Result};
use crate::report::{Outcome, Report};
use airlock_base::text::one_line_name;
use airlock_bundle::import::{
    self, AlreadyReleased, Brought, Decided, FolderOrder, ImportError, Imported, Layout,
    LeftBehind, Naming, PreconditionTarget,
};
use serde::Serialize;

#[derive(Serialize, schemars::JsonSchema)]
pub struct ImportReport {
    /// The source written lints clean, and its rollback leaves out no down script.
    pub ok: bool,
    pub layout: Layout,
    /// The source directory written.
    pub out: String,
    /// One tier per migration, in order.
    pub tiers: Vec<String>,
    /// The rollback files (down scripts, newest first); empty when none was written.
    pub rollback: Vec<String>,
    /// Every file written from a migration file, and how.
    pub files: Vec<Brought>,
    /// Every file of the migrations directory not brought over (or brought over with a
    /// caveat), and why; but those of `already_released`.
    pub left_behind: Vec<LeftBehind>,
    /// With `--since`: the migrations earlier releases of the train carried, unchanged
    /// (not tiers of this one), each with the release that carried it.
    pub already_released: Vec<AlreadyReleased>,
    /// The migrations with no down script, in order: the rollback undoes nothing of
    /// them (its probe then tells whether that matters).
    pub no_down_script: Vec<String>,
    /// Why the bundle commits each tier on its own (`transaction = "per-tier"`) where
    /// the peer commits between migrations (a migration it runs outside a transaction,
    /// an enum value added and used by a later one); empty: one transaction.
    pub splits: Vec<String>,
    /// Where Liquibase's preconditions were decided (`--fresh-on`); null: none
    /// needed a database.
    pub decided_on: Option<String>,
    /// Each Liquibase changeset with preconditions, or recorded by the target's
    /// DATABASECHANGELOG (`--history`): what import decided and why (bundle.toml
    /// says the same in comments).
    pub preconditions: Vec<Decided>,
    /// A Liquibase changelog: the DATABASECHANGELOG rows the tiers write (and the
    /// rollback removes), so Liquibase sees the release as applied; null with
    /// `--no-peer-history`, or for another layout.
    pub peer_history: Option<import::PeerHistory>,
    /// Each Liquibase `customChange` of a changeset written as a tier, and what runs
    /// in its place (`airlock.toml`'s `[import.custom_change]`; the tier's header says
    /// the same).
    pub custom_changes: Vec<import::CustomChangeUse>,
    /// The down scripts the rollback written leaves out (each in `left_behind`, with
    /// why and what to do): a rollback leaves their changes behind, so the import is
    /// not OK (exit 2) though lint passes.
    pub rollback_left_out: Vec<String>,
    /// With `--since`: the policy carried from the release followed (its params,
    /// gates, ratification, target role, probes; the gates its tiers named), each
    /// where it is in `bundle.toml`.
    pub carried: Vec<import::Carried>,
    /// `lint` on the source written: its problems (what to fix before `pack`).
    pub problems: Vec<String>,
    /// What may fail though lint passes: first each statement that changes a peer
    /// tool's own history table (which airlock never makes), then `lint`'s warnings on
    /// the source written, as `lint` words them.
    pub warnings: Vec<String>,
    /// `lint`'s notes on the source written, as `lint` words them.
    pub notes: Vec<String>,
    /// What `lint` says reaches beyond the target database (`rehearse` refuses it).
    pub reaches_beyond: Vec<crate::sql_lint::Reach>,
}

/// One line for Liquibase's history kept in step.
fn peer_history_line(p: &import::PeerHistory) -> String {
    let mut s = format!(
        "Liquibase kept in step: the tiers write {} DATABASECHANGELOG row(s) in {} ({} EXECUTED, {} MARK_RAN){}, so `liquibase status` sees the release applied; {}",
        p.executed + p.mark_ran,
        one_line_name(&p.table),
        p.executed,
        p.mark_ran,
        if p.creates_table { ", the first creating the table as Liquibase does" } else { "" },
        if p.files.iter().any(|f| f == import::PEER_ROLLBACK) {
            "the rollback removes them"
        } else {
            "no rollback was written to remove them"
        }
    );
    if !p.no_md5sum.is_empty() {
        s.push_str(&format!(
            "; MD5SUM left NULL (Liquibase writes its own on its next update) for {}",
            p.no_md5sum
                .iter()
                .map(|c| one_line_name(c).into_owned())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    s.push_str(" (--no-peer-history: none)");
    s
}

/// One line for the migrations earlier releases carried: how many, by which releases.
fn released_line(released: &[AlreadyReleased]) -> String {
    let mut releases: Vec<&str> = vec![];
    for r in released {
        if !releases.contains(&r.release.as_str()) {
            releases.push(&r.release);
        }
    }
    let releases: Vec<String> = releases
        .iter()
        .map(|r| one_line_name(r).into_owned())
        .collect();
    format!(
        "already released: {} migration(s) carried by release(s) {} of this train, each unchanged (SHA-256 as released): not tiers of this one (--json lists them)",
        released.len(),
        releases.join(", ")
    )
}

/// The most migration names the human line about missing down scripts lists.
const NO_DOWN_LISTED: usize = 10;

/// One line for every migration without a down script.
fn no_down_line(names: &[String]) -> String {
    let mut listed: Vec<String> = names
        .iter()
        .take(NO_DOWN_LISTED)
        .map(|n| one_line_name(n).into_owned())
        .collect();
    if names.len() > NO_DOWN_LISTED {
        listed.push(format!("and {} more", names.len() - NO_DOWN_LISTED));
    }
    format!(
        "no down script: {} migration(s) ({}): the rollback undoes nothing of them (the rollback probe then tells whether that matters)",
        names.len(),
        listed.join(", ")
    )
}

/// The verdict when lint passes but the rollback leaves down scripts out: not OK, and
/// what that means for `pack`.
fn left_out_line(files: &[String]) -> String {
    let names: Vec<String> = files
        .iter()
        .map(|f| one_line_name(f).into_owned())
        .collect();
    format!(
        "lint passes, but the rollback leaves out {} down script(s): {} (see \"not brought over\" for what to do): a rollback of this release leaves their changes behind; `airlock pack` packs the source as it is",
        files.len(),
        names.join(", ")
    )
}

impl Report for ImportReport {
    fn human(&self) -> String {
        let mut s = format!(
            "imported {} migration(s) from a {} layout into {}: {} tier(s), {}",
            self.tiers.len(),
            self.layout.name(),
            self.out,
            self.tiers.len(),
            if self.rollback.is_empty() {
                "no rollback".to_string()
            } else {
                format!("rollback of {} file(s)", self.rollback.len())
            }
        );
        // Names come from the folder (and a history table's name from the database):
        // each entry is kept to its one line (`one_line_name`).
        for f in &self.files {
            s.push_str(&format!(
                "\n  {} -> {} ({})",
                one_line_name(&f.from),
                f.to,
                one_line_name(&f.change)
            ));
        }
        if !self.already_released.is_empty() {
            s.push_str(&format!("\n{}", released_line(&self.already_released)));
        }
        for c in &self.carried {
            s.push_str(&format!(
                "\ncarried from the release followed: {}: {}",
                c.what,
                one_line_name(&c.detail)
            ));
        }
        for l in &self.left_behind {
            s.push_str(&format!(
                "\nnot brought over: {}: {}",
                one_line_name(&l.file),
                one_line_name(&l.why)
            ));
        }
        if let Some(on) = &self.decided_on {
            s.push_str(&format!("\npreconditions decided on {}", one_line_name(on)));
        }
        for d in &self.preconditions {
            s.push_str(&format!(
                "\nprecondition: {} ({}): {}: {}",
                one_line_name(&d.changeset),
                one_line_name(&d.at),
                d.outcome,
                one_line_name(&d.why)
            ));
        }
        for c in &self.custom_changes {
            s.push_str(&format!(
                "\ncustomChange {} ({}): {} (airlock.toml)",
                one_line_name(&c.class),
                one_line_name(&c.at),
                one_line_name(&c.mapped)
            ));
        }
        if let Some(p) = &self.peer_history {
            s.push_str(&format!("\n{}", peer_history_line(p)));
        }
        if !self.no_down_script.is_empty() {
            s.push_str(&format!("\n{}", no_down_line(&self.no_down_script)));
        }
        for why in &self.splits {
            s.push_str(&format!("\ntransaction split: {}", one_line_name(why)));
        }
        // As `lint` prints them.
        for w in &self.warnings {
            s.push_str(&format!("\nwarning: {w}"));
        }
        for n in &self.notes {
            s.push_str(&format!("\nnote: {n}"));
        }
        for r in &self.reaches_beyond {
            s.push_str(&format!("\nreaches beyond its database: {r}"));
        }
        if self.problems.is_empty() && !self.rollback_left_out.is_empty() {
            s.push_str(&format!("\n{}", left_out_line(&self.rollback_left_out)));
        } else if self.problems.is_empty() {
            s.push_str(&format!(
                "\nlint: OK; next: review {}/bundle.toml (bundle SQL runs with search_path public: if the target database sets its own, name it in [target] search_path; `airlock plan` says when they differ), then `airlock pack {} --key YOUR.key` (a key from `airlock keygen`)",
                self.out, self.out
            ));
        } else {
            s.push_str(&format!(
                "\nlint: {} problem(s) to fix before `airlock pack`:",
                self.problems.len()
            ));
            for p in &self.problems {
                s.push_str(&format!("\n  {p}"));
            }
        }
        s
    }

    fn exit_code(&self) -> crate::exit::Exit {
        if self.ok {
            crate::exit::Exit::Success
        } else {
            crate::exit::Exit::Usage
        }
    }
}

fn layout(l: ImportLayout) -> Layout {
    match l {
        ImportLayout::GolangMigrate => Layout::GolangMigrate,
        ImportLayout::Dbmate => Layout::Dbmate,
        ImportLayout::Flyway => Layout::Flyway,
        ImportLayout::Sqitch => Layout::Sqitch,
        ImportLayout::Prisma => Layout::Prisma,
        ImportLayout::Diesel => Layout::Diesel,
        ImportLayout::Atlas => Layout::Atlas,
        ImportLayout::Liquibase => Layout::Liquibase,
        ImportLayout::Goose => Layout::Goose,
        ImportLayout::Temporal => Layout::Temporal,
        ImportLayout::Folder => Layout::Folder,
    }
}

/// The hint for a changeset edited since Liquibase ran it (its MD5SUM differs).
const EDITED: &str = "nothing was written: put the changeset back as Liquibase ran it (a changeset applied is never edited: write the change as a new one), or, if the edit is deliberate, list the recorded checksum in a <validCheckSum> of the changeset; then import";

/// The hint for a gate or probe query of the release followed at a path import writes.
const CLASH: &str = "nothing was written: that query sits where import writes its own files (sql/tiers/, sql/rollback/, sql/verify/, import's own probes); keep gate and probe queries elsewhere (sql/gate/, sql/probe/) in the release followed, then import";

/// The hint for a `--since` with no new migration.
const NEXT: &str = "write the next migration first; nothing was written";

/// The hint for a recorded checksum import cannot compare.
const UNSUMMED: &str = "nothing was written: an old checksum is rewritten as `9:` by `liquibase update` with Liquibase 4.24 or later (it checks it first); a change import cannot checksum can be listed in a <validCheckSum> of the changeset once you have checked it; then import";

/// Every refusal of one run, each named, with each kind's way out once.
fn several(errors: Vec<ImportError>, named: Option<Layout>) -> Error {
    let (mut lines, mut hints): (Vec<String>, Vec<String>) = (vec![], vec![]);
    let count = errors.len();
    for (i, e) in errors.into_iter().enumerate() {
        let e = error(e, named);
        lines.push(format!("  {}. {e}", i + 1));
        if let Some(h) = e.hint().filter(|h| !hints.contains(h)) {
            hints.push(h);
        }
    }
    Error::usage(
        format!(
            "{count} problems, each named (nothing was written):\n{}",
            lines.join("\n")
        ),
        (!hints.is_empty()).then(|| hints.join("\n")),
    )
}

/// The refusals of what import cannot choose for the user (which changesets a
/// precondition leaves, which changelog is the root, which order a folder runs in),
/// as the command reports them; any other error back as it came.
fn which_to_run(e: ImportError) -> std::result::Result<Error, ImportError> {
    Ok(match e {
        ImportError::Precondition { undecided: true, .. } => Error::usage(
            e.to_string(),
            Some("nothing was written: decide it for the database the bundle is for: --fresh-on CONN for a new database (import makes and drops a throwaway database there and runs the changesets in order), or --history CONN for a database Liquibase manages (its DATABASECHANGELOG)".to_string()),
        ),
        ImportError::Precondition { .. } => Error::usage(
            e.to_string(),
            Some("nothing was written: Liquibase would stop its update here too; fix the changelog or the precondition, then import".to_string()),
        ),
        ImportError::PreconditionTooSoon { .. } => Error::usage(
            e.to_string(),
            Some("nothing was written: the reason says what could not be answered, and the way out".to_string()),
        ),
        // A runtime error (exit 1): the changeset's SQL failed there; nothing written.
        ImportError::PreconditionTarget { .. } => Error::Db(crate::db::DbError::Sql {
            context: "deciding Liquibase preconditions (nothing was written)".into(),
            message: e.to_string(),
        }),
        ImportError::OrderUnclear { .. } => Error::usage(
            e.to_string(),
            Some("nothing was written: say which order the scripts were applied in: --order version (runs of digits as numbers) or --order text (the names byte by byte); or rename the files so that both orders agree (7.01, 7.10)".to_string()),
        ),
        ImportError::SeveralRoots { ref roots } => {
            let named: Vec<String> = roots.iter().map(|r| format!("`--changelog {r}`")).collect();
            Error::usage(
                e.to_string(),
                Some(format!("nothing was written: name the root changelog, as Liquibase's `--changelog-file` does: {}", named.join(" or "))),
            )
        }
        other => return Err(other),
    })
}

/// The error `e` as the command reports it; `named`: the layout `--from` named, if
/// it named one (then the layout is not what to change).
fn error(e: ImportError, named: Option<Layout>) -> Error {
    if let ImportError::Several { errors } = e {
        return several(errors, named);
    }
    let e = match which_to_run(e) {
        Ok(refused) => return refused,
        Err(e) => e,
    };
    match e {
        ImportError::Read { path, source } => {
            Error::io(format!("reading {}", path.display()), source)
        }
        ImportError::Write { path, source } => {
            Error::io(format!("writing {}", path.display()), source)
        }
        ImportError::OutExists(_) => Error::usage(
            e.to_string(),
            Some("nothing was written: name a new directory with --out, or pass --force to replace the source there (replaced whole, once the new one is)".to_string()),
        ),
        ImportError::NotReplaceable { .. } => Error::usage(
            e.to_string(),
            Some("nothing was written: name a new directory with --out".to_string()),
        ),
        ImportError::Edited { .. } => Error::usage(
            e.to_string(),
            Some(
                "put the script back as it was applied (a migration applied is never edited: write the change as a new one), or, if the edit is deliberate, record it with `flyway repair` first; then import"
                    .to_string(),
            ),
        ),
        ImportError::ChecksumMismatch { .. } => Error::usage(e.to_string(), Some(EDITED.into())),
        ImportError::ChecksumUnknown { .. } => Error::usage(e.to_string(), Some(UNSUMMED.into())),
        ImportError::NothingNew { .. } => Error::usage(
            e.to_string(),
            Some(
                "the target is up to date with these migrations; import from the next one on"
                    .to_string(),
            ),
        ),
        ImportError::Refused { .. } => Error::usage(
            e.to_string(),
            Some("make it a regular file inside the folder: import follows no link and reads nothing outside the folder".to_string()),
        ),
        ImportError::Foreign { tool, .. } => Error::usage(
            e.to_string(),
            Some(format!("nothing was written: import refuses what it would read wrong ({tool}'s file)")),
        ),
        ImportError::Layout { .. } | ImportError::SeveralFolders { .. } => {
            Error::usage(e.to_string(), None)
        }
        ImportError::EditedReleased { .. } | ImportError::ReleasedGone { .. } => Error::usage(
            e.to_string(),
            Some("put the migration back as it was released (git history has it) and write the change as a new migration; nothing was written".to_string()),
        ),
        ImportError::InsertedBefore { .. } => Error::usage(
            e.to_string(),
            Some("rename it to sort after the released migrations (a released database would never run it otherwise); nothing was written".to_string()),
        ),
        ImportError::OtherHistory { .. } => Error::usage(
            e.to_string(),
            Some("name the bundle of this history's previous release with --since; nothing was written".to_string()),
        ),
        ImportError::PolicyClash { .. } => Error::usage(e.to_string(), Some(CLASH.into())),
        ImportError::NothingNewSince { .. } => Error::usage(e.to_string(), Some(NEXT.into())),
        ImportError::YamlAlias { .. } => Error::usage(
            e.to_string(),
            Some("nothing was written: write the value out where the alias stands (each `*name` as the `&name` it repeats), then import".to_string()),
        ),
        ImportError::TooDeep { .. } => Error::usage(
            e.to_string(),
            Some("nothing was written: this is no changelog Liquibase writes; check the file is the one meant".to_string()),
        ),
        ImportError::Empty { .. } if named.is_some() => {
            let from = named.map(Layout::name).unwrap_or_default();
            Error::usage(
                e.to_string(),
                Some(format!("`--from {from}` found none: name the folder that holds the migrations, or leave out `--from {from}` to let import tell the layout from the files")),
            )
        }
        ImportError::TooLarge { .. } => Error::usage(
            e.to_string(),
            Some("a script this large is data, not a migration import holds in memory: write the bundle's tier for it by hand (tiers are streamed, not held)".to_string()),
        ),
        other => Error::usage(
            other.to_string(),
            Some(
                "name the layout with --from (golang-migrate, dbmate, flyway, sqitch, prisma, diesel, atlas, liquibase, goose, temporal, folder)"
                    .to_string(),
            ),
        ),
    }
}

/// A migration file the folder names but import refused to read (a link, a path out
/// of the folder): the source written lacks it, so the import is not OK, whatever lint
/// says of the rest.
fn refused(left: &[LeftBehind]) -> Option<String> {
    let names: Vec<String> = left
        .iter()
        .filter(|l| l.refused)
        .map(|l| one_line_name(&l.file).into_owned())
        .collect();
    (!names.is_empty()).then(|| format!(
        "{} migration file(s) not read, so the source lacks them: {} (see \"not brought over\" for why); make each a regular file inside the folder, then import again",
        names.len(),
        names.join(", ")
    ))
}

/// Folder names that say where migrations live, not whose they are: the bundle is
/// named after the first folder above them that is none of these.
const GENERIC_FOLDERS: &[&str] = &[
    "migrations",
    "migration",
    "migrate",
    "db",
    "database",
    "sql",
    "schema",
    "changelog",
    "changelogs",
    "resources",
    "main",
    "src",
    // Where a tool keeps them: `db/liquibase/changelog.xml` is no project's name.
    "liquibase",
];

/// The default `[bundle] name` of migrations in `dir`: its folder's name, or, when
/// that only says "migrations" (`Migrations`, `db/migrate`, `src/main/resources/db/migration`),
/// the first folder's above it that says more; made a name lint accepts (lower case,
/// `[a-z0-9._-]`, at most 100 characters), `imported` when nothing is left.
fn bundle_name_of(dir: &std::path::Path) -> String {
    let folder = |p: &std::path::Path| p.file_name().map(|n| n.to_string_lossy().to_lowercase());
    let chosen = dir
        .ancestors()
        .filter_map(folder)
        .find(|n| !GENERIC_FOLDERS.contains(&n.as_str()))
        .or_else(|| folder(dir))
        .unwrap_or_default();
    let name: String = chosen
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name: String = name
        .trim_start_matches(|c: char| !c.is_ascii_alphanumeric())
        .chars()
        .take(100)
        .collect();
    if name.is_empty() {
        "imported".into()
    } else {
        name
    }
}

/// The release `--since` names: verified with the trust store, and holding the
/// migrations it carried (`[[released]]`).
fn since(
    bundle: &std::path::Path,
    trust: Option<&std::path::Path>,
    args: &ImportArgs,
) -> Result<import::Since> {
    let Some(trust) = trust else {
        return Err(Error::usage(
            "--since needs --trust: the release it names is verified before import reads what it carried",
            Some("add --trust KEYS (or set it in airlock.toml)".to_string()),
        ));
    };
    if args.history.is_some() {
        return Err(Error::usage(
            "--since and --history exclude each other: a release that follows another starts where it ended, not where the peer's history table is",
            Some("leave out --history".to_string()),
        ));
    }
    let store = crate::commands::release::carried::load_trust_for_bundle(trust, bundle)?;
    let vb = crate::verified::VerifiedBundle::load(
        bundle,
        &store,
        crate::commands::common::judge_time(None)?,
        &crate::commands::common::verdicts(),
    )?;
    let m = vb.manifest();
    if m.released.is_empty() {
        return Err(Error::usage(
            format!(
                "{} ({} {}) records no released migrations: it was not made by `airlock import` of this airlock",
                bundle.display(),
                m.bundle.name,
                m.bundle.version
            ),
            Some("import the first release of the train again with this airlock (without --since), then follow it".to_string()),
        ));
    }
    // Without --bundle-version a Liquibase changelog's last tag names the release
    // (import judges it); otherwise it is the default.
    let version = match (&args.bundle_version, args.from) {
        (Some(v), _) => Some(v.as_str()),
        (None, Some(ImportLayout::Liquibase)) => None,
        (None, _) => Some(import::DEFAULT_VERSION),
    };
    if version == Some(m.bundle.version.as_str()) {
        return Err(Error::usage(
            format!(
                "this release's version {:?} is the version of the release it follows ({} {})",
                m.bundle.version, m.bundle.name, m.bundle.version
            ),
            Some("name this release's version with --bundle-version".to_string()),
        ));
    }
    Ok(import::Since {
        name: m.bundle.name.clone(),
        version: m.bundle.version.clone(),
        sequence: m.bundle.sequence,
        bundle_id: vb.id().to_string(),
        tiers: m.tier.iter().map(|t| t.name.clone()).collect(),
        released: m.released.clone(),
        policy: crate::commands::release::import_policy::of(&vb, bundle)?,
    })
}

/// What `--out` may hold (`--force`), checked before any work (a throwaway database,
/// a history read); import checks again before it writes.
fn existing_out(args: &ImportArgs) -> Result<import::Existing> {
    let existing = if args.force {
        import::Existing::Replace
    } else {
        import::Existing::Refuse
    };
    let folders: Vec<&std::path::Path> = args.migrations.iter().map(|p| p.as_path()).collect();
    import::check_out(&args.out, existing, &folders).map_err(|e| error(e, None))?;
    Ok(existing)
}

/// Refused before anything is read: a flag for a layout other than `layout`.
fn flags_fit(layout: Layout, args: &ImportArgs) -> Result<()> {
    let misfit = [
        (
            args.fresh_on.is_some(),
            Layout::Liquibase,
            "--fresh-on",
            "decides Liquibase preconditions; a {} layout has none",
        ),
        (
            args.order.is_some(),
            Layout::Folder,
            "--order",
            "sorts a plain folder of SQL files; a {} layout has its own order",
        ),
        (
            args.changelog.is_some(),
            Layout::Liquibase,
            "--changelog",
            "names the root of a Liquibase changelog; a {} layout has none",
        ),
    ];
    match misfit
        .iter()
        .find(|(given, fits, ..)| *given && layout != *fits)
    {
        Some((_, _, flag, what)) => Err(Error::usage(
            format!("{flag} {}", what.replace("{}", layout.name())),
            Some(format!("leave out {flag}")),
        )),
        None => Ok(()),
    }
}

/// Where Liquibase's preconditions are decided: on the target itself (`--history`,
/// read-only; a schema check on what the import builds first on the replay), else on
/// a fresh replay (`--fresh-on`), else nowhere (a check that needs a database is
/// refused).
enum Deciders {
    Target(Box<crate::commands::release::import_target::OnTarget>),
    Fresh(Box<crate::commands::release::import_fresh::Fresh>),
    None,
}

impl Deciders {
    fn open(layout: Layout, args: &ImportArgs) -> Result<Deciders> {
        use crate::commands::release::{import_fresh::Fresh, import_target::OnTarget};
        let fresh = match &args.fresh_on {
            Some(conn) if args.since.is_some() => Some(Fresh::create(conn)?.following()),
            Some(conn) => Some(Fresh::create(conn)?),
            None => None,
        };
        Ok(match (&args.history, fresh) {
            (Some(conn), fresh) if layout == Layout::Liquibase => {
                Deciders::Target(Box::new(OnTarget::open(conn, fresh)?))
            }
            (_, Some(fresh)) => Deciders::Fresh(Box::new(fresh)),
            (_, None) => Deciders::None,
        })
    }

    fn target(&self) -> Option<&dyn PreconditionTarget> {
        match self {
            Deciders::Target(t) => Some(t.as_ref()),
            Deciders::Fresh(f) => Some(f.as_ref()),
            Deciders::None => None,
        }
    }
}

pub fn run(args: ImportArgs) -> Result<Outcome> {
    let (first, locations) = args
        .migrations
        .split_first()
        .expect("clap requires one directory");
    let layout = match args.from {
        Some(l) => layout(l),
        // A root changelog named: a Liquibase changelog, wherever in the folder it is.
        None if args.changelog.is_some() => Layout::Liquibase,
        None if locations.is_empty() => import::detect(first).map_err(|e| error(e, None))?,
        None => Layout::Flyway,
    };
    flags_fit(layout, &args)?;
    let existing = existing_out(&args)?;
    let dir_name = first
        .canonicalize()
        .ok()
        .map(|p| bundle_name_of(&p))
        .unwrap_or_else(|| "imported".into());
    let applied = match &args.history {
        Some(conn) => Some(crate::commands::release::import_history::read(
            conn, layout, first,
        )?),
        None => None,
    };
    let deciders = Deciders::open(layout, &args)?;
    let since = match &args.since {
        Some(bundle) => Some(since(bundle, args.trust.as_deref(), &args)?),
        None => None,
    };
    let custom_changes = crate::commands::release::import_custom::read()?;
    let default_name = since
        .as_ref()
        .map_or(dir_name.as_str(), |s| s.name.as_str());
    let naming = Naming {
        name: args.name.as_deref().unwrap_or(default_name),
        version: args.bundle_version.as_deref(),
        database: &args.database,
        options: &args.options,
        applied: applied.as_ref(),
        since: since.as_ref(),
        locations,
        preconditions: deciders.target(),
        peer_history: !args.no_peer_history,
        custom_changes: &custom_changes,
        changelog: args.changelog.as_deref(),
        order: args.order.map(|o| match o {
            FolderOrderArg::Text => FolderOrder::Text,
            FolderOrderArg::Version => FolderOrder::Version,
        }),
    };
    let Imported {
        layout,
        tiers,
        rollback,
        files,
        left_behind,
        already_released,
        no_down_script,
        splits,
        peer_tables,
        rollback_left_out,
        carried,
        preconditions,
        peer_history,
        custom_changes,
    } = import::import(first, layout, (&args.out, existing), &naming)
        .map_err(|e| error(e, args.from.map(self::layout)))?;
    let decided_on = deciders.target().map(|f| f.describe());
    drop(deciders);
    let (mut problems, mut warnings, notes, reaches_beyond) = match crate::spec::lint(&args.out) {
        Ok(l) => (vec![], l.warnings, l.notes, l.reaches_beyond),
        Err(crate::spec::SpecError::Invalid { problems, .. }) => (problems, vec![], vec![], vec![]),
        Err(e) => (vec![e.to_string()], vec![], vec![], vec![]),
    };
    problems.splice(0..0, refused(&left_behind));
    warnings.splice(0..0, peer_tables);
    Ok(Box::new(ImportReport {
        ok: problems.is_empty() && rollback_left_out.is_empty(),
        layout,
        out: args.out.display().to_string(),
        tiers,
        rollback,
        files,
        left_behind,
        already_released,
        no_down_script,
        splits,
        decided_on,
        preconditions,
        peer_history,
        custom_changes,
        rollback_left_out,
        carried,
        problems,
        warnings,
        notes,
        reaches_beyond,
    }))
}
