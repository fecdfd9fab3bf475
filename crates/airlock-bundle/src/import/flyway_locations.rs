//! Flyway with several locations: the folders named on the command line after the
//! first (`import --from flyway DIR1 DIR2…`), or the `locations` of the folder's own
//! `flyway.conf` (`flyway.locations=filesystem:db/migration,filesystem:db/data`) or
//! `flyway.toml` (`[flyway] locations = ["filesystem:…"]`). Flyway scans each location
//! and its subfolders and merges what it finds in version order; so does import.
//!
//! Invariant: a location of a configuration file is a folder inside the imported
//! folder, reached as every file is (`folder.rs`): one outside it (`..`, an absolute
//! path), a `classpath:` one, or one with a wildcard is refused, never guessed at.

use super::folder::{Entry, Folder, NotRead, Refused};
use super::{layout_error, read, ImportError, LeftBehind, Script};

/// Flyway's configuration files, as import reads them.
pub(super) const CONF: &str = "flyway.conf";
pub(super) const TOML: &str = "flyway.toml";

/// The locations the folder's configuration names, as written (`filesystem:` dropped),
/// or None when it has no configuration naming any.
fn configured(folder: &Folder) -> Result<Option<(&'static str, Vec<String>)>, ImportError> {
    for file in [CONF, TOML] {
        if folder.has_file(file) != Ok(true) {
            continue;
        }
        let text =
            String::from_utf8(read(folder, file)?).map_err(|_| layout_error(file, "not UTF-8"))?;
        let list = if file == CONF {
            conf_locations(&text)
        } else {
            toml_locations(&text).map_err(|why| layout_error(file, why))?
        };
        if let Some(list) = list {
            return Ok(Some((file, list)));
        }
    }
    Ok(None)
}

/// `flyway.locations=a,b` of a Java properties file (the last one wins, as there).
fn conf_locations(text: &str) -> Option<Vec<String>> {
    let mut found = None;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with(['#', '!']) {
            continue;
        }
        let Some((key, value)) = line.split_once(['=', ':']) else {
            continue;
        };
        if key.trim() == "flyway.locations" {
            found = Some(split(value));
        }
    }
    found
}

/// `[flyway] locations = [...]` (or one string) of `flyway.toml`.
fn toml_locations(text: &str) -> Result<Option<Vec<String>>, String> {
    let value: toml::Value = text.parse().map_err(|e| format!("not TOML: {e}"))?;
    let Some(l) = value.get("flyway").and_then(|f| f.get("locations")) else {
        return Ok(None);
    };
    match l {
        toml::Value::String(s) => Ok(Some(split(s))),
        toml::Value::Array(a) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| "[flyway] locations holds something not a string".to_string())
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        _ => Err("[flyway] locations is neither a string nor a list".into()),
    }
}

fn split(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// A location as a path inside the folder: `filesystem:` dropped, anything else refused.
fn inside(conf: &str, location: &str) -> Result<String, ImportError> {
    if location.starts_with("classpath:")
        || location.starts_with("s3:")
        || location.starts_with("gcs:")
    {
        return Err(layout_error(conf, format!("location `{location}` is not a folder: name the folder it stands for with `import --from flyway DIR…`")));
    }
    let path = location.strip_prefix("filesystem:").unwrap_or(location);
    let path = path.trim_end_matches('/');
    let path = path.strip_prefix("./").unwrap_or(path);
    if path.contains(['*', '?', '{']) {
        return Err(layout_error(
            conf,
            format!("location `{location}` has a wildcard: name its folders one by one"),
        ));
    }
    Ok(path.to_string())
}

/// Every regular file under `folder` (its subfolders too, as Flyway scans them),
/// `/`-separated from it, sorted; links and other entries go to `left`, refused when
/// named like a script.
fn scan(
    folder: &Folder,
    prefix: &str,
    out: &mut Vec<String>,
    left: &mut Vec<LeftBehind>,
) -> Result<(), ImportError> {
    let entries = folder.entries().map_err(|source| ImportError::Read {
        path: folder.path().to_path_buf(),
        source,
    })?;
    for e in entries {
        match e {
            Entry::File(n) => out.push(format!("{prefix}{n}")),
            Entry::Dir(d) => {
                let sub = folder.sub(&d).map_err(|e| not_read(folder, &d, e))?;
                scan(&sub, &format!("{prefix}{d}/"), out, left)?;
            }
            Entry::Refused(n, why) => {
                let mut l = LeftBehind::refused(format!("{prefix}{n}"), why);
                l.refused = n.ends_with(".sql");
                left.push(l);
            }
        }
    }
    Ok(())
}

fn not_read(folder: &Folder, rel: &str, e: NotRead) -> ImportError {
    match e {
        NotRead::Refused(why) => ImportError::Refused {
            file: folder.join(rel).display().to_string(),
            why: why.why(),
        },
        NotRead::Io(source) => ImportError::Read {
            path: folder.join(rel),
            source,
        },
        NotRead::TooLarge { .. } => ImportError::Refused {
            file: rel.into(),
            why: Refused::NotRegular.why(),
        },
    }
}

/// The scripts of every location, each with its file name: the configured locations
/// of `folder` (read from it), or `folder` and each of `more` (folders named on the
/// command line). None when there is one location, `folder` itself.
pub(super) fn scripts(
    folder: &Folder,
    more: &[Folder],
    used: &mut std::collections::BTreeSet<String>,
    left: &mut Vec<LeftBehind>,
) -> Result<Option<Vec<(String, Script)>>, ImportError> {
    let mut out = vec![];
    if !more.is_empty() {
        for (k, f) in std::iter::once(folder).chain(more).enumerate() {
            let mut files = vec![];
            scan(f, "", &mut files, left)?;
            for rel in files {
                // The first folder's own names: reported by the path shown here.
                if k == 0 {
                    used.insert(rel.clone());
                }
                let bytes = read(f, &rel)?;
                let shown = f.join(&rel).display().to_string();
                out.push((
                    base(&rel),
                    Script::Section {
                        from: shown,
                        bytes,
                        how: "as-is".into(),
                    },
                ));
            }
        }
        return Ok(Some(out));
    }
    let Some((conf, locations)) = configured(folder)? else {
        return Ok(None);
    };
    used.insert(conf.into());
    for location in locations {
        let rel = inside(conf, &location)?;
        let sub = if rel.is_empty() || rel == "." {
            None
        } else {
            Some(folder.sub(&rel).map_err(|e| match e {
                NotRead::Io(e) if e.kind() == std::io::ErrorKind::NotFound => layout_error(
                    conf,
                    format!("location `{location}` does not exist in the folder"),
                ),
                e => not_read(folder, &rel, e),
            })?)
        };
        let mut files = vec![];
        scan(sub.as_ref().unwrap_or(folder), "", &mut files, left)?;
        for f in files {
            let path = if sub.is_some() {
                format!("{rel}/{f}")
            } else {
                f.clone()
            };
            out.push((base(&f), Script::File(path)));
        }
    }
    Ok(Some(out))
}

fn base(rel: &str) -> String {
    rel.rsplit('/').next().unwrap_or(rel).to_string()
}

/// Whether the folder has a Flyway configuration file.
pub(super) fn detect(folder: &Folder) -> bool {
    [CONF, TOML].iter().any(|f| folder.has_file(f) == Ok(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_read_from_either_file() {
        assert_eq!(
            conf_locations("# x\nflyway.url=jdbc:postgresql://h/db\nflyway.locations = filesystem:db/a, filesystem:db/b\n"),
            Some(vec!["filesystem:db/a".into(), "filesystem:db/b".into()])
        );
        assert_eq!(conf_locations("flyway.user=x\n"), None);
        assert_eq!(
            toml_locations("[flyway]\nlocations = [\"filesystem:a\", \"filesystem:b\"]\n").unwrap(),
            Some(vec!["filesystem:a".into(), "filesystem:b".into()])
        );
        for bad in ["classpath:db/migration", "filesystem:db/*", "s3:bucket"] {
            assert!(inside(CONF, bad).is_err(), "{bad}");
        }
        assert_eq!(inside(CONF, "filesystem:./db/a/").unwrap(), "db/a");
    }
}
