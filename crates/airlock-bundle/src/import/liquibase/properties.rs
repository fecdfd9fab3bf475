//! Liquibase's changelog properties, substituted as Liquibase substitutes them: each
//! `${name}` in an attribute or a text becomes the property's value before anything
//! else reads the element (so the SQL written and the checksum are of the value, as
//! Liquibase's are). A property comes from the command line first (`--option
//! NAME=VALUE`, Liquibase's `-DNAME=VALUE`), then from the changelog's `<property
//! name value>` elements read so far (global, or with `global="false"` only in the
//! changelog that sets it; one whose `dbms` leaves PostgreSQL out is not set), and the
//! first value set wins, as in Liquibase. `database.typeName` is `postgresql`.
//!
//! Invariant: nothing is guessed. A `${name}` nobody set is left as written, and the
//! changeset holding it is refused naming it (Liquibase would run the text `${name}`,
//! or the value of a setting import cannot see); `database.defaultSchemaName` (the
//! connection's default schema, to Liquibase) is known only from `--option`, or from
//! the target's connection with `--history` (`import::with_default_schema`). A property
//! Liquibase sets under a context or label, or reads from a file, is refused.

use super::preconditions::not_for_postgres;
use super::tree::Node;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// The properties known at a point of the changelog.
pub(super) struct Properties {
    /// The command line's and the global ones, the first value set of each.
    global: BTreeMap<String, String>,
    /// Each changelog being read's own (`global="false"`), outermost first.
    local: Vec<BTreeMap<String, String>>,
}

impl Properties {
    /// The command line's (`--option NAME=VALUE`) and Liquibase's own.
    pub(super) fn new(options: &[(String, String)]) -> Properties {
        let mut global: BTreeMap<String, String> = options.iter().cloned().collect();
        global
            .entry("database.typeName".into())
            .or_insert_with(|| "postgresql".into());
        Properties {
            global,
            local: vec![],
        }
    }

    /// A changelog begins: its own properties start empty.
    pub(super) fn enter(&mut self) {
        self.local.push(BTreeMap::new());
    }

    /// The changelog ends: its own properties go.
    pub(super) fn leave(&mut self) {
        self.local.pop();
    }

    fn value(&self, name: &str) -> Option<&str> {
        (self.local.iter().rev())
            .find_map(|l| l.get(name))
            .or_else(|| self.global.get(name))
            .map(String::as_str)
    }

    /// A `<property>` element: set, unless set already or not for PostgreSQL.
    pub(super) fn define(&mut self, n: &Node) -> Result<(), String> {
        if let Some(k) = ["file", "context", "contextFilter", "labels"]
            .iter()
            .find(|k| n.attr(k).is_some_and(|v| !v.trim().is_empty()))
        {
            return Err(match *k {
                "file" => "a `property file=…`: properties read from a file, which import does not read; give each as `--option NAME=VALUE` (as Liquibase's `-DNAME=VALUE`), then import".to_string(),
                k => format!("a `property {k}=…`: Liquibase sets it only under the contexts/labels given at run time, which import cannot know; give the value as `--option NAME=VALUE`, then import"),
            });
        }
        let (Some(name), Some(value)) = (n.attr("name"), n.attr("value")) else {
            return Err("a `property` without `name` and `value`".into());
        };
        if n.attr("dbms").is_some_and(not_for_postgres) {
            return Ok(());
        }
        let value = self.expand_str(value).into_owned();
        if n.attr("global")
            .is_some_and(|g| g.eq_ignore_ascii_case("false"))
        {
            if self.value(name).is_none() {
                if let Some(l) = self.local.last_mut() {
                    l.insert(name.to_string(), value);
                }
            }
        } else if self.value(name).is_none() {
            self.global.insert(name.to_string(), value);
        }
        Ok(())
    }

    /// `s` with each `${name}` of a property set replaced by its value.
    fn expand_str<'s>(&self, s: &'s str) -> Cow<'s, str> {
        if !s.contains("${") {
            return Cow::Borrowed(s);
        }
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(i) = rest.find("${") {
            out.push_str(&rest[..i]);
            let after = &rest[i + 2..];
            match after
                .find('}')
                .and_then(|e| Some((e, self.value(&after[..e])?)))
            {
                Some((e, v)) => {
                    out.push_str(v);
                    rest = &after[e + 1..];
                }
                None => {
                    out.push_str("${");
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        Cow::Owned(out)
    }

    /// `n` with its properties substituted (borrowed when it names none).
    pub(super) fn expand<'n>(&self, n: &'n Node) -> Cow<'n, Node> {
        if !mentions(n) {
            return Cow::Borrowed(n);
        }
        let mut n = n.clone();
        self.expand_in(&mut n);
        Cow::Owned(n)
    }

    fn expand_in(&self, n: &mut Node) {
        for (_, v) in &mut n.attrs {
            if let Cow::Owned(s) = self.expand_str(v) {
                *v = s;
            }
        }
        if let Cow::Owned(s) = self.expand_str(&n.text) {
            n.text = s;
        }
        for c in &mut n.children {
            self.expand_in(c);
        }
    }
}

/// Whether `${` is anywhere in `n`.
fn mentions(n: &Node) -> bool {
    n.attrs.iter().any(|(_, v)| v.contains("${"))
        || n.text.contains("${")
        || n.children.iter().any(mentions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn property(attrs: &[(&str, &str)]) -> Node {
        Node {
            name: "property".into(),
            attrs: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Node::default()
        }
    }

    #[test]
    fn the_first_value_set_wins_and_the_command_line_first_of_all() {
        let mut p = Properties::new(&[("schema".into(), "app".into())]);
        p.enter();
        p.define(&property(&[("name", "schema"), ("value", "other")]))
            .unwrap();
        p.define(&property(&[
            ("name", "t"),
            ("value", "thing"),
            ("dbms", "oracle"),
        ]))
        .unwrap();
        p.define(&property(&[("name", "t"), ("value", "item")]))
            .unwrap();
        p.define(&property(&[("name", "t"), ("value", "later")]))
            .unwrap();
        assert_eq!(
            p.expand_str("${schema}.${t} ${nobody} ${"),
            "app.item ${nobody} ${"
        );
        assert_eq!(p.expand_str("${database.typeName}"), "postgresql");
    }

    #[test]
    fn a_local_property_ends_with_its_changelog() {
        let mut p = Properties::new(&[]);
        p.enter();
        p.enter();
        p.define(&property(&[
            ("name", "x"),
            ("value", "1"),
            ("global", "false"),
        ]))
        .unwrap();
        assert_eq!(p.expand_str("${x}"), "1");
        p.leave();
        assert_eq!(p.expand_str("${x}"), "${x}");
    }

    #[test]
    fn a_property_from_a_file_or_under_a_context_is_refused() {
        let mut p = Properties::new(&[]);
        assert!(p.define(&property(&[("file", "x.properties")])).is_err());
        assert!(p
            .define(&property(&[
                ("name", "x"),
                ("value", "1"),
                ("context", "dev")
            ]))
            .is_err());
    }
}
