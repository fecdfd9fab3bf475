//! Liquibase XML and YAML changelogs, read as Liquibase runs them: the root changelog
//! (the one `--changelog` names, else the one no other includes), its `include`s and `includeAll`s in order (an
//! `includeAll` folder's files, subfolders too, in path order; a plain `.sql` file
//! there is one changeset of its whole text, as Liquibase reads it, and a formatted
//! SQL one its changesets), and each changeset a tier: its changes as the SQL
//! Liquibase's PostgreSQL generator writes (`liquibase_changes.rs`), its `<rollback>`
//! (SQL or changes) its part of the rollback. A changeset with
//! `runInTransaction="false"` commits apart, as goose's `NO TRANSACTION` does
//! (`commits.rs`).
//! Each changeset is known, as Liquibase knows it, by id, author and path: its
//! `logicalFilePath`, else its changelog's, else its file's path on Liquibase's search
//! path (`ChangeSetId::path`); the file it is read from names its tier.
//!
//! A changeset's `modifySql` edits its SQL as Liquibase does on PostgreSQL
//! (`modify_sql.rs`).
//!
//! Invariant: never read wrong: what would change what Liquibase runs and import
//! cannot evaluate (preconditions, contexts, labels, properties, a `modifySql` it
//! cannot apply exactly, a change type or attribute not read) is refused naming the
//! changeset, the file and the element, and nothing is written; what Liquibase would
//! not run on PostgreSQL (`dbms`, `ignore`) or re-runs (`runAlways`, `runOnChange`) is
//! left behind with why.

use super::changes::{change, ignored, sql_text};
use super::checksum;
use super::custom::{self, CustomChanges};
use super::inverse::inverse;
use super::modify_sql::{ModifySql, Of};
use super::preconditions::{self as preconditions, ChangeSetId, Recorded, RowText};
use super::properties::Properties;
use super::sql as liquibase;
use super::tree::{parse, Node};
use super::types::Quoting;
use crate::import::folder::{Entry, Folder};
use crate::import::{layout_error, read, ImportError, LeftBehind, Migration, Script};
use std::collections::BTreeSet;

/// Whether `n` names an XML or YAML file.
fn xml_or_yaml(n: &str) -> bool {
    let l = n.to_ascii_lowercase();
    [".xml", ".yaml", ".yml"].iter().any(|e| l.ends_with(e))
}

/// The changesets of the root XML/YAML changelog among `names` (or of `named`, the
/// one `--changelog` names), as migrations; None when there is none (formatted SQL is
/// read instead).
/// `tags`: the `tagDatabase` tags of the changesets read, in order (the last names
/// the release, when no `--bundle-version` does); `quiet`: the changesets Liquibase
/// runs that write no tier (id, author, file).
pub(in crate::import) fn migrations(
    (folder, named): (&Folder, Option<&str>),
    (custom, options): (&CustomChanges, &[(String, String)]),
    names: &[String],
    used: &mut BTreeSet<String>,
    left: &mut Vec<LeftBehind>,
    (tags, quiet): (&mut Vec<String>, &mut Vec<ChangeSetId>),
) -> Result<Option<Vec<Migration>>, ImportError> {
    let mut candidates = vec![];
    for n in names.iter().filter(|n| xml_or_yaml(n)) {
        if read(folder, n)?
            .windows(17)
            .any(|w| w == b"databaseChangeLog")
        {
            candidates.push(n.clone());
        }
    }
    let root = match named {
        Some(named) => Some(named_root(folder, named)?),
        None if candidates.is_empty() => return Ok(None),
        None => None,
    };
    let root = match root {
        Some(root) => root,
        None => only_root(folder, &candidates, options)?,
    };
    let mut w = Walk::new(folder, custom, options);
    w.file(&root)?;
    if named.is_some() {
        // The folder's other changelogs: Liquibase does not run them either.
        for c in candidates.iter().filter(|c| !w.used.contains(*c)) {
            w.left.push(LeftBehind {
                refused: false,
                file: c.clone(),
                why: format!("a changelog `--changelog {root}` neither is nor includes: Liquibase does not run it"),
            });
        }
    }
    w.under_head();
    // The changesets after the last tier that Liquibase records: with the last.
    let rest = std::mem::take(&mut w.pending);
    if let Some(lb) = w.out.last_mut().and_then(|m| m.lb.as_deref_mut()) {
        lb.with
            .extend(rest.into_iter().map(|r| Recorded { after: true, ..r }));
    }
    used.extend(w.used);
    left.extend(w.left);
    tags.extend(w.tags);
    quiet.extend(w.quiet);
    Ok(Some(unique_labels(w.out)))
}

/// The root changelog `--changelog` names (`named`, a path in the folder, as
/// Liquibase's `--changelog-file` on its search path), as the folder names it.
fn named_root(folder: &Folder, named: &str) -> Result<String, ImportError> {
    let refuse = |why: &str| layout_error(named, format!("`--changelog {named}`: {why}"));
    let rel = resolve("", named).ok_or_else(|| {
        refuse(
            "it leaves the imported folder; name the root changelog by its path inside the folder",
        )
    })?;
    let lower = rel.to_ascii_lowercase();
    if !(xml_or_yaml(&lower) || lower.ends_with(".sql")) {
        return Err(refuse(
            "a root changelog is an XML, YAML or formatted SQL file",
        ));
    }
    match folder.has_file(&rel) {
        Ok(true) => Ok(rel),
        _ => Err(refuse("no such file in the imported folder; name the root changelog by its path inside the folder (as Liquibase's `--changelog-file` names it on its search path)")),
    }
}

/// The one changelog among `candidates` none of the others includes.
fn only_root(
    folder: &Folder,
    candidates: &[String],
    options: &[(String, String)],
) -> Result<String, ImportError> {
    let mut reached: Vec<BTreeSet<String>> = vec![];
    let none = CustomChanges::new();
    for c in candidates {
        let mut w = Walk::new(folder, &none, options);
        // Which files it includes, nothing else: a changelog another includes may use
        // a property only its includer sets.
        w.reach_only = true;
        w.file(c)?;
        reached.push(w.used);
    }
    let roots: Vec<&String> = candidates
        .iter()
        .enumerate()
        .filter(|(i, c)| {
            !reached
                .iter()
                .enumerate()
                .any(|(j, r)| j != *i && r.contains(*c))
        })
        .map(|(_, c)| c)
        .collect();
    let [root] = roots.as_slice() else {
        // Name the roots (the changelogs they include are no news); with none, every
        // changelog is in a circle: name them all.
        let named: Vec<&str> = match roots.is_empty() {
            true => candidates.iter().map(String::as_str).collect(),
            false => roots.iter().map(|r| r.as_str()).collect(),
        };
        return Err(ImportError::SeveralRoots {
            roots: named.into_iter().map(str::to_string).collect(),
        });
    };
    Ok(root.to_string())
}

/// Liquibase knows a changeset by its author, id and file: one `author:id` in two
/// files (Keycloak's `keycloak:map-remove-ri`) is two changesets. Each such label is
/// told apart by its file (`author:id (file)`); the others stay as they are. A tier's
/// name keeps the file it is read from, never its `logicalFilePath` (which is what
/// DATABASECHANGELOG and the changeset's identity use): it says where to look.
fn unique_labels(mut found: Vec<Migration>) -> Vec<Migration> {
    let mut count = std::collections::BTreeMap::<String, usize>::new();
    for m in &found {
        *count.entry(m.label.clone()).or_default() += 1;
    }
    for m in &mut found {
        if count[&m.label] > 1 {
            if let Some(up) = &m.up {
                m.label = format!("{} ({})", m.label, up.from());
            }
        }
    }
    found
}

/// A changelog being read: what it brought, what it left, which files it read.
struct Walk<'a> {
    folder: &'a Folder,
    out: Vec<Migration>,
    left: Vec<LeftBehind>,
    used: BTreeSet<String>,
    /// The changelogs being read, outermost first (an include cycle is refused).
    stack: Vec<String>,
    /// The folder's own path on Liquibase's search path (`META-INF`), once an include
    /// named a file of it so (`META-INF/a.xml`, [`Walk::on_search_path`]): Liquibase
    /// records each file under it, and so do the rows import writes.
    head: std::cell::OnceCell<String>,
    /// The changesets read (`file::id::author`): Liquibase refuses one twice.
    seen: BTreeSet<String>,
    /// The `sqlFile`s of the changeset being read, for the report.
    sql_files: Vec<String>,
    /// What of the changeset being read Liquibase ignores, for the report.
    ignored: Vec<String>,
    /// The `objectQuotingStrategy` of the changelog being read (its changesets'
    /// default; an included changelog does not inherit it).
    quoting: Quoting,
    /// The `logicalFilePath` of the changelog being read, if it sets one (its
    /// changesets' path as Liquibase records them; an included changelog does not
    /// inherit it).
    logical: Option<String>,
    /// The `tagDatabase` tags read, in order.
    tags: Vec<String>,
    /// The root changelog's own `preConditions`, until its first changeset carries it.
    changelog_pre: Option<preconditions::Preconds>,
    /// Changesets Liquibase runs (and records) that write no tier.
    quiet: Vec<ChangeSetId>,
    /// Those of them not yet carried by a changeset that is a tier (`with`).
    pending: Vec<Recorded>,
    /// The team's mapping of each `customChange` class (`custom.rs`).
    custom: &'a CustomChanges,
    /// The `customChange`s of the changeset being read.
    customs: Vec<custom::Found>,
    /// The changelog properties set so far (`properties.rs`).
    props: Properties,
    /// Only which files the changelog reaches, its changesets unread ([`only_root`]).
    reach_only: bool,
}

/// The folder part of `file` (`a/b.xml` → `a`).
fn dir_of(file: &str) -> &str {
    file.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
}

/// `path` as the folder's relative name: relative to `base` or to the folder, with
/// `.` and `..` resolved; None when it leaves the folder.
fn resolve(base: &str, path: &str) -> Option<String> {
    let path = path.trim().trim_start_matches("classpath:");
    let mut parts: Vec<&str> = if path.starts_with('/') {
        vec![]
    } else {
        base.split('/').filter(|p| !p.is_empty()).collect()
    };
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// A change's DESCRIPTION as Liquibase writes it (`AbstractChange.getDescription`):
/// its name, then each of its parameters whose name ends in `name` (but a schema's or
/// a catalog's) as `key=value`, sorted, `, ` between.
fn change_description(c: &Node) -> String {
    let names: std::collections::BTreeSet<String> = (c.attrs.iter())
        .filter(|(k, _)| {
            let k = k.to_ascii_lowercase();
            k.ends_with("name") && !k.contains("schema") && !k.contains("catalog")
        })
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let names: Vec<String> = names.into_iter().collect();
    format!("{} {}", c.name, names.join(", "))
        .trim()
        .to_string()
}

/// `StringUtil.limitSize`: at most `max` characters, the last three `...` when cut.
fn limit_size(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    s.chars().take(max - 3).collect::<String>() + "..."
}

/// What Liquibase writes of the changeset `n` in its DATABASECHANGELOG row besides
/// its identity: its changes' descriptions (DESCRIPTION), its `<comment>` and the tag of its
/// `tagDatabase`.
fn row_text(n: &Node) -> RowText {
    let changes: Vec<String> = (n.children.iter())
        .filter(|c| {
            ![
                "comment",
                "validCheckSum",
                "preConditions",
                "rollback",
                "modifySql",
            ]
            .contains(&c.name.as_str())
        })
        .map(change_description)
        .collect();
    RowText {
        description: if changes.is_empty() {
            "empty".into()
        } else {
            limit_size(&changes.join("; "), 250)
        },
        comments: (n.children.iter())
            .find(|c| c.name == "comment")
            .map(|c| c.text.trim().to_string()),
        tag: (n.children.iter())
            .filter(|c| c.name == "tagDatabase")
            .find_map(|c| c.attr("tag").map(str::to_string)),
    }
}

impl<'a> Walk<'a> {
    fn new(folder: &'a Folder, custom: &'a CustomChanges, options: &[(String, String)]) -> Self {
        Walk {
            folder,
            custom,
            customs: vec![],
            props: Properties::new(options),
            reach_only: false,
            out: vec![],
            left: vec![],
            used: BTreeSet::new(),
            stack: vec![],
            seen: BTreeSet::new(),
            sql_files: vec![],
            ignored: vec![],
            quoting: Quoting::Legacy,
            logical: None,
            head: std::cell::OnceCell::new(),
            tags: vec![],
            changelog_pre: None,
            quiet: vec![],
            pending: vec![],
        }
    }

    /// Each changeset's path, when it is its file's (no `logicalFilePath`), as
    /// Liquibase records it: under the folder's path on its search path, when an
    /// include showed one (`META-INF/…`). The root changelog's changesets too: a folder
    /// below its search path is run with the root named so.
    fn under_head(&mut self) {
        let Some(head) = self.head.get().cloned() else {
            return;
        };
        let fix = |c: &mut ChangeSetId| {
            if c.path == c.file {
                c.path = format!("{head}/{}", c.file);
            }
        };
        for lb in self.out.iter_mut().filter_map(|m| m.lb.as_deref_mut()) {
            fix(lb);
            lb.with.iter_mut().for_each(|r| fix(&mut r.cs));
        }
        self.pending.iter_mut().for_each(|r| fix(&mut r.cs));
        self.quiet.iter_mut().for_each(fix);
    }

    /// The changesets read since `from` in `out`: the first carries those recorded
    /// before it that are no tier.
    fn carry_pending(&mut self, from: usize) {
        if let Some(lb) = self.out.get_mut(from).and_then(|m| m.lb.as_deref_mut()) {
            let mut with = std::mem::take(&mut self.pending);
            with.append(&mut lb.with);
            lb.with = with;
        }
    }

    /// Where `path` of an element of `file` is (`relativeToChangelogFile` said or not).
    fn locate(&self, file: &str, n: &Node, path: &str) -> Result<String, ImportError> {
        let base = if n.is("relativeToChangelogFile") {
            dir_of(file)
        } else {
            ""
        };
        let rel = resolve(base, path).ok_or_else(|| {
            layout_error(&n.at(file), format!("`{path}` leaves the imported folder"))
        })?;
        if base.is_empty() {
            return Ok(self.on_search_path(rel));
        }
        Ok(rel)
    }

    /// A path on Liquibase's search path (`db/changelog/changes/a.yaml`, as Spring
    /// Boot writes it) as the folder's own: when the folder is that search path's
    /// `db/changelog` (its path ends so) and the file is there, the rest of the path;
    /// else the path as it is.
    fn on_search_path(&self, rel: String) -> String {
        if self.folder.has_file(&rel) != Ok(false) {
            return rel;
        }
        let parts: Vec<&str> = rel.split('/').collect();
        for k in 1..parts.len() {
            let (head, rest) = (parts[..k].join("/"), parts[k..].join("/"));
            if self.folder.path().ends_with(&head) && self.folder.has_file(&rest) == Ok(true) {
                let _ = self.head.set(head);
                return rest;
            }
        }
        rel
    }

    /// Read the changelog `file` (XML, YAML or SQL) and all it includes.
    fn file(&mut self, file: &str) -> Result<(), ImportError> {
        if self.stack.iter().any(|f| f == file) {
            return Err(layout_error(
                file,
                format!(
                    "included again from within itself ({})",
                    self.stack.join(" → ")
                ),
            ));
        }
        let bytes = read(self.folder, file)?;
        self.used.insert(file.to_string());
        let lower = file.to_ascii_lowercase();
        if lower.ends_with(".sql") {
            if self.reach_only {
                return Ok(());
            }
            return self.sql_file(file, bytes);
        }
        if lower.ends_with(".json") {
            return Err(layout_error(file, "a Liquibase JSON changelog: import reads XML, YAML and formatted SQL ones; have Liquibase write the SQL it runs (`liquibase update-sql`), or convert it, then import"));
        }
        let root = parse(file, &bytes)?;
        refuse_attrs(file, &root, &["logicalFilePath", "objectQuotingStrategy"])?;
        let quoting = quoting(&root).map_err(|why| layout_error(&root.at(file), why))?;
        let outer = std::mem::replace(&mut self.quoting, quoting.unwrap_or_default());
        let logical = logical_path(&root).map_err(|why| layout_error(&root.at(file), why))?;
        let outer_logical = std::mem::replace(&mut self.logical, logical);
        self.stack.push(file.to_string());
        self.props.enter();
        for n in &root.children {
            if n.name == "property" {
                self.props
                    .define(n)
                    .map_err(|why| layout_error(&n.at(file), why))?;
                continue;
            }
            let n = &*self.props.expand(n);
            match n.name.as_str() {
                "changeSet" if self.reach_only => {}
                "changeSet" => self.changeset(file, n)?,
                "include" => {
                    refuse_attrs(
                        file,
                        n,
                        &["file", "relativeToChangelogFile", "errorIfMissing"],
                    )?;
                    let path = n
                        .attr("file")
                        .ok_or_else(|| layout_error(&n.at(file), "`include` without `file`"))?;
                    let target = self.locate(file, n, path)?;
                    if self.folder.has_file(&target) == Ok(false) {
                        if n.attr("errorIfMissing")
                            .is_some_and(|v| v.eq_ignore_ascii_case("false"))
                        {
                            continue;
                        }
                        return Err(layout_error(&n.at(file), format!("`include` of `{path}`: no such file in the imported folder (without `relativeToChangelogFile`, Liquibase looks on its search path: import the folder at its root)")));
                    }
                    self.file(&target)?;
                }
                "includeAll" => self.include_all(file, n)?,
                // YAML's `- logicalFilePath: …` (read by `logical_path`).
                "logicalFilePath" if n.children.is_empty() && n.attrs.is_empty() => {}
                "preConditions" if self.stack.len() == 1 => {
                    let p = preconditions::read(file, n).map_err(|why| layout_error(&n.at(file), why))?;
                    self.changelog_pre = Some(p);
                }
                "preConditions" => return Err(unread(file, n, "an included changelog's own `preConditions` (import decides the root changelog's)")),
                other => return Err(unread(file, n, &format!("the changelog holds `{other}`"))),
            }
        }
        self.props.leave();
        self.stack.pop();
        self.quoting = outer;
        self.logical = outer_logical;
        Ok(())
    }

    /// A `.sql` file reached by an include: formatted SQL's changesets, or the whole
    /// file as one changeset (Liquibase's `raw::includeAll`).
    fn sql_file(&mut self, file: &str, bytes: Vec<u8>) -> Result<(), ImportError> {
        if liquibase::is_changelog(&bytes) {
            let found = liquibase::file_migrations(file, bytes, &mut self.left)?;
            let from = self.out.len();
            self.out.extend(found);
            self.carry_pending(from);
            return Ok(());
        }
        let bytes_sum = bytes;
        self.out.push(Migration {
            key: vec![],
            label: file
                .rsplit('/')
                .next()
                .unwrap_or(file)
                .trim_end_matches(".sql")
                .into(),
            up: Some(Script::File(file.to_string())),
            down: None,
            up_online: false,
            commits_apart: false,
            verify: None,
            no_down_said: false,
            // As Liquibase records a plain SQL file of an `includeAll`.
            lb: Some(Box::new(ChangeSetId {
                id: "raw".into(),
                author: "includeAll".into(),
                file: file.into(),
                // A plain SQL file sets no logicalFilePath.
                path: file.into(),
                at: file.into(),
                pre: None,
                changelog_pre: None,
                ran_before: false,
                // Liquibase's: one `sql` change of the file's whole text.
                sum: String::from_utf8(bytes_sum)
                    .map(|t| checksum::of_changeset(vec![Ok(checksum::of_sql(&t))], vec![]))
                    .unwrap_or_else(|_| Err("its file is not UTF-8".into())),
                valid: vec![],
                custom: vec![],
                row: RowText {
                    description: "sql".into(),
                    ..RowText::default()
                },
                with: vec![],
            })),
        });
        self.carry_pending(self.out.len() - 1);
        Ok(())
    }

    /// `includeAll path=…`: every changelog under the folder, in path order.
    fn include_all(&mut self, file: &str, n: &Node) -> Result<(), ImportError> {
        refuse_attrs(
            file,
            n,
            &["path", "relativeToChangelogFile", "errorIfMissingOrEmpty"],
        )?;
        let path = n
            .attr("path")
            .ok_or_else(|| layout_error(&n.at(file), "`includeAll` without `path`"))?;
        let dir = self.locate(file, n, path)?;
        let mut found = vec![];
        self.list(&dir, &mut found)?;
        found.sort();
        if found.is_empty()
            && !n
                .attr("errorIfMissingOrEmpty")
                .is_some_and(|v| v.eq_ignore_ascii_case("false"))
        {
            return Err(layout_error(
                &n.at(file),
                format!("`includeAll` of `{path}`: no changelog there (Liquibase fails on it)"),
            ));
        }
        for f in found {
            self.file(&f)?;
        }
        Ok(())
    }

    /// The changelog files under `dir`, subfolders too.
    fn list(&self, dir: &str, found: &mut Vec<String>) -> Result<(), ImportError> {
        let sub = if dir.is_empty() {
            None
        } else {
            Some(self.folder.sub(dir).map_err(|_| {
                layout_error(
                    dir,
                    "an `includeAll` folder import cannot open (missing, or a link)",
                )
            })?)
        };
        let entries = sub
            .as_ref()
            .unwrap_or(self.folder)
            .entries()
            .map_err(|source| ImportError::Read {
                path: self.folder.join(dir),
                source,
            })?;
        let join = |name: &str| {
            if dir.is_empty() {
                name.to_string()
            } else {
                format!("{dir}/{name}")
            }
        };
        for e in entries {
            match e {
                Entry::File(name) => {
                    let l = name.to_ascii_lowercase();
                    if xml_or_yaml(&l) || l.ends_with(".sql") || l.ends_with(".json") {
                        found.push(join(&name));
                    }
                }
                Entry::Dir(name) => self.list(&join(&name), found)?,
                Entry::Refused(name, why) => {
                    return Err(layout_error(
                        &join(&name),
                        format!("in an `includeAll` folder: {}", why.why()),
                    ))
                }
            }
        }
        Ok(())
    }

    /// The changeset `n` of `file` begun: its label (`author:id`), where it is, and its
    /// quoting; None when Liquibase does not run it here (`not_here`, reported).
    fn begin(
        &mut self,
        file: &str,
        n: &Node,
    ) -> Result<Option<(String, String, Quoting)>, ImportError> {
        let id = n.attr("id").unwrap_or_default();
        let author = n.attr("author").unwrap_or_default();
        let label = format!("{author}:{id}");
        let at = format!("{} (changeset {label})", n.at(file));
        if !self.seen.insert(format!("{file}::{id}::{author}")) {
            return Err(layout_error(
                &at,
                "a second changeset of this id and author in the file: Liquibase refuses it",
            ));
        }
        check(file, &at, n)?;
        let q = quoting(n)
            .map_err(|why| layout_error(&at, why))?
            .unwrap_or(self.quoting);
        if let Some(why) = not_here(n) {
            self.left.push(LeftBehind {
                refused: false,
                file: at,
                why,
            });
            return Ok(None);
        }
        self.customs.clear();
        Ok(Some((label, at, q)))
    }

    /// A `customChange` `c` of changeset `label`: the SQL the project file maps its
    /// class to (none for `skip`, or when nobody mapped it), the use noted.
    fn custom_change(&mut self, file: &str, label: &str, c: &Node) -> Vec<String> {
        let class = c.attr("class").unwrap_or_default().to_string();
        let (sql, mapped) = match custom::mapped(self.custom, &class) {
            Some((sql, said)) => (sql, Some(said)),
            None => (vec![], None),
        };
        self.customs.push(custom::Found {
            class,
            at: format!("{} (changeset {label})", c.at(file)),
            mapped,
        });
        sql
    }

    fn changeset(&mut self, file: &str, n: &Node) -> Result<(), ImportError> {
        let Some((label, at, q)) = self.begin(file, n)? else {
            return Ok(());
        };
        let refuse = |why: String| layout_error(&at, why);
        let modify = ModifySql::read(n, &mut self.ignored).map_err(&refuse)?;
        let (mut parts, mut down, mut rollback_said, mut pre) = (vec![], vec![], false, None);
        // Without a `<rollback>`, what Liquibase derives: each change's inverse, the
        // last change first; none when one change has no inverse.
        let mut derived: Option<Vec<Node>> = Some(vec![]);
        for c in &n.children {
            match c.name.as_str() {
                "comment" | "validCheckSum" | "modifySql" => {}
                "preConditions" => pre = Some(preconditions::read(file, c).map_err(&refuse)?),
                "rollback" => {
                    rollback_said = true;
                    let sql = self.rollback(file, &at, c, q)?;
                    down.extend(modify.rollback(sql, Of::Text).map_err(&refuse)?);
                }
                "sqlFile" => {
                    derived = None;
                    parts.push((self.sql_file_change(file, &at, c)?, Of::Text));
                }
                "customChange" => {
                    derived = None;
                    parts.push((self.custom_change(file, &label, c), Of::Text));
                }
                _ => {
                    self.note_ignored(c);
                    let sql = change(c, q).map_err(|why| {
                        layout_error(&format!("{} (changeset {label})", c.at(file)), why)
                    })?;
                    let of = if c.name == "sql" {
                        Of::Text
                    } else {
                        Of::Change
                    };
                    parts.push((sql, of));
                    derived = derived.zip(inverse(c)).map(|(mut all, mut these)| {
                        these.append(&mut all);
                        these
                    });
                }
            }
        }
        let up = modify.changes(parts).map_err(&refuse)?;
        let mut how_down = "the rollback";
        if let Some(d) = derived.filter(|d| !rollback_said && !d.is_empty()) {
            down = derived_down(&at, d, q, &modify)?;
            how_down = "the rollback Liquibase derives (each change undone, the last first)";
        }
        if self.runs_nothing(n, &at, &up, &down) {
            self.record_quiet(file, n);
            return Ok(());
        }
        let apart = n
            .attr("runInTransaction")
            .is_some_and(|v| v.eq_ignore_ascii_case("false"));
        let with = self.with_text(&modify.said());
        let script = |stmts: Vec<String>, what: &str| Script::Section {
            from: file.to_string(),
            bytes: format!("{}\n", stmts.join("\n")).into_bytes(),
            how: format!(
                "{what} of changeset {label}, as the SQL Liquibase writes for PostgreSQL{with}"
            ),
        };
        let mut lb = self.ident(file, n, pre);
        lb.custom = std::mem::take(&mut self.customs);
        let lb = Some(lb);
        self.out.push(Migration {
            key: vec![],
            label: label.clone(),
            lb,
            no_down_said: rollback_said && down.is_empty(),
            down: (!down.is_empty()).then(|| script(down, how_down)),
            up: Some(script(up, "the changes")),
            up_online: apart,
            commits_apart: apart,
            verify: None,
        });
        self.carry_pending(self.out.len() - 1);
        Ok(())
    }

    /// The changeset `n` of `file`, which runs nothing: Liquibase records it as
    /// executed, with the tier that follows it.
    fn record_quiet(&mut self, file: &str, n: &Node) {
        let ident = self.base_ident(file, n);
        self.pending.push(Recorded {
            cs: ident.clone(),
            exectype: "EXECUTED",
            after: false,
        });
        self.quiet.push(ident);
    }

    /// What the report adds to the changeset read: the `sqlFile`s whose text it holds,
    /// what of it Liquibase ignores, and the `modifySql` edits made (`edits`).
    fn with_text(&mut self, edits: &[String]) -> String {
        let mut with: String = std::mem::take(&mut self.sql_files)
            .iter()
            .map(|f| format!(" (with the text of {f})"))
            .collect();
        let ignored = std::mem::take(&mut self.ignored);
        if !ignored.is_empty() {
            with.push_str(&format!(
                "; ignored as Liquibase ignores it: {}",
                ignored.join(", ")
            ));
        }
        if !edits.is_empty() {
            with.push_str(&format!(
                "; edited by its `modifySql` as Liquibase edits it on PostgreSQL: {}",
                edits.join(", ")
            ));
        }
        let mapped: Vec<String> = self
            .customs
            .iter()
            .filter_map(custom::Found::said)
            .collect();
        if !mapped.is_empty() {
            with.push_str(&format!(
                "; in place of each Java class, as airlock.toml maps it: {}",
                mapped.join(", ")
            ));
        }
        with
    }

    /// What Liquibase knows the changeset `n` of `file` by, with its preconditions
    /// (`pre`) and, for the root changelog's first, the changelog's own.
    fn ident(
        &mut self,
        file: &str,
        n: &Node,
        pre: Option<preconditions::Preconds>,
    ) -> Box<ChangeSetId> {
        Box::new(ChangeSetId {
            pre,
            changelog_pre: self.changelog_pre.take(),
            ..self.base_ident(file, n)
        })
    }

    /// What Liquibase knows the changeset `n` of `file` by, with its checksum and the
    /// `validCheckSum`s it lists; no preconditions.
    fn base_ident(&self, file: &str, n: &Node) -> ChangeSetId {
        let valid = (n.children.iter())
            .filter(|c| c.name == "validCheckSum")
            .map(|c| c.text.trim().to_string())
            .chain(n.attr("validCheckSum").map(|v| v.trim().to_string()))
            .collect();
        ChangeSetId {
            id: n.attr("id").unwrap_or_default().into(),
            author: n.attr("author").unwrap_or_default().into(),
            file: file.into(),
            path: self.path_of(file, n),
            at: n.at(file),
            pre: None,
            changelog_pre: None,
            ran_before: false,
            sum: self.sum(file, n),
            valid,
            row: row_text(n),
            with: vec![],
            custom: vec![],
        }
    }

    /// The path Liquibase records the changeset `n` of `file` under (its FILENAME, a
    /// third of its identity): its own `logicalFilePath`, else its changelog's, else
    /// the file's path as the folder names it (import reads the folder as Liquibase's
    /// search path). Tier names and messages keep `file`, the file it is read from.
    fn path_of(&self, file: &str, n: &Node) -> String {
        n.attr("logicalFilePath")
            .map(|p| p.trim().to_string())
            .or_else(|| self.logical.clone())
            .unwrap_or_else(|| file.to_string())
    }

    /// The changeset `n`'s checksum as Liquibase computes it (`checksum.rs`): its
    /// changes' in order, a `sql`/`sqlFile` for another dbms left out.
    fn sum(&self, file: &str, n: &Node) -> checksum::Sum {
        let mut changes = vec![];
        for c in &n.children {
            let other_dbms = matches!(c.name.as_str(), "sql" | "sqlFile")
                && c.attr("dbms").is_some_and(preconditions::not_for_postgres);
            match c.name.as_str() {
                "comment" | "validCheckSum" | "preConditions" | "rollback" | "modifySql" => {}
                _ if other_dbms => {}
                "sqlFile" => {
                    let path = c.attr("path").unwrap_or_default();
                    let text = (self.locate(file, c, path).ok())
                        .and_then(|t| read(self.folder, &t).ok())
                        .and_then(|b| String::from_utf8(b).ok())
                        .ok_or_else(|| format!("its `sqlFile` `{path}`, not read"))?;
                    changes.push(Ok(checksum::of_sql(&text)));
                }
                _ => changes.push(checksum::of_change(c)),
            }
        }
        let visitors = (n.children.iter())
            .filter(|m| m.name == "modifySql")
            .filter(|m| !m.attr("dbms").is_some_and(preconditions::not_for_postgres))
            .flat_map(|m| m.children.iter().map(move |e| checksum::of_visitor(m, e)))
            .collect();
        checksum::of_changeset(changes, visitors)
    }

    /// Whether the changeset `n` (at `at`) runs no statement and undoes none: then no
    /// tier is written for it (approvers would read an empty one), and the report says
    /// why. Its `tagDatabase` tags are kept either way: the last names the release.
    fn runs_nothing(&mut self, n: &Node, at: &str, up: &[String], down: &[String]) -> bool {
        let tags: Vec<String> = (n.children.iter())
            .filter(|c| c.name == "tagDatabase")
            .filter_map(|c| c.attr("tag").map(str::to_string))
            .collect();
        self.tags.extend(tags.iter().cloned());
        // A class nobody mapped makes it a tier still (refused unless the target's
        // history says it ran): never recorded as run for running nothing.
        let unmapped = self.customs.iter().any(|c| c.mapped.is_none());
        if !up.is_empty() || !down.is_empty() || unmapped {
            return false;
        }
        let skipped: Vec<String> = self
            .customs
            .iter()
            .filter_map(custom::Found::said)
            .collect();
        let why = match tags.as_slice() {
            [] if !skipped.is_empty() => format!(
                "runs no statement ({}, airlock.toml): no tier written",
                skipped.join("; ")
            ),
            [] => "runs no statement (only comments, `empty` or `output`): no tier written".to_string(),
            tags => format!(
                "only tags the database ({}): airlock's ledger records each release by its bundle, so no tier is written; the last tag is the bundle's version unless --bundle-version names one",
                tags.iter().map(|t| format!("`tagDatabase tag={t:?}`")).collect::<Vec<_>>().join(", ")
            ),
        };
        self.left.push(LeftBehind {
            refused: false,
            file: at.to_string(),
            why,
        });
        true
    }

    /// The statements of a `<rollback>`: its SQL text, then its changes.
    fn rollback(
        &mut self,
        file: &str,
        at: &str,
        r: &Node,
        q: Quoting,
    ) -> Result<Vec<String>, ImportError> {
        if let Some(k) = ["changeSetId", "changeSetAuthor", "changeSetPath"]
            .iter()
            .find(|k| r.attr(k).is_some())
        {
            return Err(layout_error(at, format!("a `<rollback {k}=…>` naming another changeset, which import does not read; write its SQL in the rollback, then import")));
        }
        let mut out = sql_text(r, &r.text).map_err(|why| layout_error(at, why))?;
        for c in &r.children {
            match c.name.as_str() {
                "comment" => {}
                "sqlFile" => out.extend(self.sql_file_change(file, at, c)?),
                _ => {
                    self.note_ignored(c);
                    out.extend(
                        change(c, q)
                            .map_err(|why| layout_error(at, format!("in its rollback: {why}")))?,
                    )
                }
            }
        }
        Ok(out)
    }

    /// What of the change `c` Liquibase ignores, once each, for the report.
    fn note_ignored(&mut self, c: &Node) {
        for said in ignored(c) {
            if !self.ignored.contains(&said) {
                self.ignored.push(said);
            }
        }
    }

    /// An `sqlFile` change: the file's text, split as a `sql` change's.
    fn sql_file_change(
        &mut self,
        file: &str,
        at: &str,
        c: &Node,
    ) -> Result<Vec<String>, ImportError> {
        let path = c
            .attr("path")
            .ok_or_else(|| layout_error(at, "`sqlFile` without `path`"))?;
        let target = self.locate(file, c, path)?;
        let bytes = read(self.folder, &target)?;
        self.used.insert(target.clone());
        self.sql_files.push(target.clone());
        let text = String::from_utf8(bytes)
            .map_err(|_| layout_error(&target, "not UTF-8 (SQL files must be UTF-8)"))?;
        sql_text(c, &text).map_err(|why| layout_error(at, why))
    }
}

/// The rollback Liquibase derives for a changeset at `at` (`derived`: its changes'
/// inverses, the last change's first), as its `modifySql` for the rollback leaves it.
fn derived_down(
    at: &str,
    derived: Vec<Node>,
    q: Quoting,
    modify: &ModifySql,
) -> Result<Vec<String>, ImportError> {
    let mut down = vec![];
    for c in derived {
        let sql = change(&c, q)
            .map_err(|why| layout_error(at, format!("its derived rollback: {why}")))?;
        down.extend(
            modify
                .rollback(sql, Of::Change)
                .map_err(|why| layout_error(at, why))?,
        );
    }
    Ok(down)
}

/// What of a changeset's attributes (and `${…}` in it) import cannot evaluate,
/// refused naming it (`at`).
fn check(file: &str, at: &str, n: &Node) -> Result<(), ImportError> {
    if let Some(p) = placeholder(n) {
        let name = p.trim_start_matches("${").trim_end_matches('}');
        let what = if name == "database.defaultSchemaName" {
            " (to Liquibase, the connection's default schema: `public` unless the target sets another; `--history CONN` reads it there)"
        } else {
            ""
        };
        return Err(layout_error(at, format!("`{p}`: a changelog property nobody set here{what}; Liquibase substitutes it when it runs (from a `<property>` of the changelog, `-D`, or `liquibase.properties`): give it as `--option {name}=VALUE` (as Liquibase's `-D{name}=VALUE`), then import")));
    }
    refuse_attrs(
        file,
        n,
        &[
            "id",
            "author",
            "runInTransaction",
            "failOnError",
            "dbms",
            "runAlways",
            "runOnChange",
            "context",
            "contextFilter",
            "labels",
            "logicalFilePath",
            "created",
            "ignore",
            "objectQuotingStrategy",
            "onValidationFail",
        ],
    )?;
    let refuse = |why: String| layout_error(at, why);
    logical_path(n).map_err(&refuse)?;
    for key in ["context", "contextFilter", "labels"] {
        if let Some(v) = n.attr(key).filter(|v| !v.trim().is_empty()) {
            return Err(refuse(format!("`{key}=\"{v}\"`: Liquibase runs this changeset only under the contexts/labels given to it at run time, which import cannot know; remove the attribute (or the changeset) as your deployment runs it, then import")));
        }
    }
    if n.attr("failOnError")
        .is_some_and(|v| v.eq_ignore_ascii_case("false"))
    {
        return Err(refuse(
            "`failOnError=\"false\"`: Liquibase goes on past its errors; a tier never does".into(),
        ));
    }
    Ok(())
}

/// The `logicalFilePath` a changelog or a changeset `n` sets, if any (an XML
/// attribute; in a YAML changelog, a `- logicalFilePath: …` item, read as a child).
fn logical_path(n: &Node) -> Result<Option<String>, String> {
    let said = (n.attr("logicalFilePath").map(str::to_string)).or_else(|| {
        (n.children.iter())
            .find(|c| c.name == "logicalFilePath")
            .map(|c| c.text.clone())
    });
    match said.as_deref().map(str::trim) {
        None => Ok(None),
        Some("") => Err("`logicalFilePath` is empty: name the path Liquibase records the changesets under, or remove it".into()),
        Some(p) => Ok(Some(p.to_string())),
    }
}

/// The `objectQuotingStrategy` `n` (a changelog or a changeset) sets, if any.
fn quoting(n: &Node) -> Result<Option<Quoting>, String> {
    match n.attr("objectQuotingStrategy") {
        None => Ok(None),
        Some(v) => Quoting::parse(v).map(Some).ok_or_else(|| format!("`objectQuotingStrategy=\"{v}\"`: Liquibase knows LEGACY, QUOTE_ALL_OBJECTS and QUOTE_ONLY_RESERVED_WORDS")),
    }
}

/// A `${…}` property reference anywhere in `n`, if any.
fn placeholder(n: &Node) -> Option<String> {
    let find = |s: &str| {
        let i = s.find("${")?;
        let end = s[i..].find('}').map(|e| i + e + 1).unwrap_or(s.len());
        Some(s[i..end].to_string())
    };
    n.attrs
        .iter()
        .find_map(|(_, v)| find(v))
        .or_else(|| find(&n.text))
        .or_else(|| n.children.iter().find_map(placeholder))
}

/// A layout error naming `n` in `file`.
fn unread(file: &str, n: &Node, why: &str) -> ImportError {
    layout_error(&n.at(file), format!("{why}, which import does not read"))
}

/// Refuses an attribute of `n` outside `known`.
fn refuse_attrs(file: &str, n: &Node, known: &[&str]) -> Result<(), ImportError> {
    match n.attrs.iter().find(|(k, _)| !known.contains(&k.as_str())) {
        Some((k, v)) => Err(unread(file, n, &format!("`{}` with `{k}=\"{v}\"`", n.name))),
        None => Ok(()),
    }
}

/// Why a changeset is not brought over, if it is not.
fn not_here(n: &Node) -> Option<String> {
    if n.is("ignore") {
        return Some("`ignore=\"true\"`: Liquibase skips it".into());
    }
    if let Some(dbms) = n
        .attr("dbms")
        .filter(|d| preconditions::not_for_postgres(d))
    {
        return Some(format!("a changeset for dbms=\"{dbms}\", not PostgreSQL"));
    }
    for key in ["runAlways", "runOnChange"] {
        if n.is(key) {
            return Some(format!("`{key}=\"true\"`: Liquibase re-runs it on later updates; airlock runs a tier once: bring its current text as a tier of the release that changes it"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rows_description_is_liquibase_s() {
        let c = Node {
            name: "renameColumn".into(),
            attrs: [
                ("tableName", "EVENT_ENTITY"),
                ("schemaName", "public"),
                ("oldColumnName", "TIME"),
                ("newColumnName", "EVENT_TIME"),
                ("columnDataType", "BIGINT"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            ..Node::default()
        };
        assert_eq!(
            change_description(&c),
            "renameColumn newColumnName=EVENT_TIME, oldColumnName=TIME, tableName=EVENT_ENTITY"
        );
        let sql = Node {
            name: "sql".into(),
            ..Node::default()
        };
        assert_eq!(change_description(&sql), "sql");
        let long = "x".repeat(260);
        let cut = limit_size(&long, 250);
        assert_eq!((cut.chars().count(), &cut[244..]), (250, "xxx..."));
    }

    #[test]
    fn paths_resolve_inside_the_folder_only() {
        assert_eq!(resolve("db", "sub/a.xml").as_deref(), Some("db/sub/a.xml"));
        assert_eq!(resolve("db", "../a.xml").as_deref(), Some("a.xml"));
        assert_eq!(
            resolve("", "classpath:/a/b.yaml").as_deref(),
            Some("a/b.yaml")
        );
        assert_eq!(resolve("", "../x.xml"), None);
        assert_eq!(dir_of("a/b/c.xml"), "a/b");
    }
}
