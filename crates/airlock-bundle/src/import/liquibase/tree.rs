//! A Liquibase XML or YAML changelog read into one tree of elements, as the XML has
//! it: an element's name, its attributes, its child elements and its text. YAML maps
//! onto it as Liquibase reads YAML: a map's scalar values are attributes, a map value
//! is a child element of that name, a list under `changes` or `columns` holds child
//! elements (each item a one-key map), any other list is a child element of that name
//! holding its items, and a string where XML has text (`rollback: DROP TABLE t`, `sql:`
//! of a `sql` change, `where:`) is read through [`Node::get`] either way.
//!
//! Invariant: nothing is guessed: a file that does not parse, a YAML document that is
//! not one map holding `databaseChangeLog`, or an XML root of another name is refused
//! naming the file (and the line, where the parser says one). XML with a DTD is
//! refused (roxmltree's default), so no entity is ever expanded; a YAML alias (`*a`)
//! is refused before the document is loaded, so no anchor is ever copied (a few
//! hundred bytes of aliases to aliases load as billions of nodes); and a changelog
//! nested deeper than [`MAX_DEPTH`] elements is refused before it is walked, so no
//! input decides how deep the stack goes. Liquibase changelogs use neither.

use crate::import::{layout_error, ImportError};

/// How deep a changelog's elements may nest (the root is 1). Liquibase's own go about
/// 6 deep (`databaseChangeLog`, `changeSet`, `createTable`, `column`, `constraints`).
pub(in crate::import) const MAX_DEPTH: usize = 256;

/// One element of a changelog.
#[derive(Clone, Debug, Default, PartialEq)]
pub(in crate::import) struct Node {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Node>,
    pub text: String,
    /// Its line in the file (1-based; 0 where the format gives none: YAML).
    pub line: usize,
}

impl Node {
    /// The attribute `key`.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The attribute `key`, or the text of the child element `key` (XML's `<where>`).
    pub fn get(&self, key: &str) -> Option<String> {
        self.attr(key).map(str::to_string).or_else(|| {
            self.children
                .iter()
                .find(|c| c.name == key)
                .map(|c| c.text.clone())
        })
    }

    /// Whether the attribute `key` is `true`.
    pub fn is(&self, key: &str) -> bool {
        self.attr(key)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// `file` and where this element is in it, for a message.
    pub fn at(&self, file: &str) -> String {
        match self.line {
            0 => file.to_string(),
            n => format!("{file}:{n}"),
        }
    }
}

/// The root `databaseChangeLog` element of the changelog `file` (its `bytes`).
pub(in crate::import) fn parse(file: &str, bytes: &[u8]) -> Result<Node, ImportError> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| layout_error(file, "a changelog must be UTF-8"))?;
    let lower = file.to_ascii_lowercase();
    let root = if lower.ends_with(".xml") {
        xml(file, text)?
    } else {
        yaml(file, text)?
    };
    if root.name != "databaseChangeLog" {
        return Err(layout_error(
            file,
            format!(
                "the root is `{}`, not Liquibase's `databaseChangeLog`",
                root.name
            ),
        ));
    }
    Ok(root)
}

fn xml(file: &str, text: &str) -> Result<Node, ImportError> {
    let doc = roxmltree::Document::parse(text)
        .map_err(|e| layout_error(file, format!("not well-formed XML: {e}")))?;
    xml_node(file, &doc, doc.root_element(), 1)
}

/// The element `n`, `depth` deep; one deeper than [`MAX_DEPTH`] is refused by line.
fn xml_node(
    file: &str,
    doc: &roxmltree::Document,
    n: roxmltree::Node,
    depth: usize,
) -> Result<Node, ImportError> {
    let line = doc.text_pos_at(n.range().start).row as usize;
    if depth > MAX_DEPTH {
        return Err(too_deep(format!("{file}:{line}")));
    }
    let mut out = Node {
        name: n.tag_name().name().to_string(),
        attrs: n
            .attributes()
            .filter(|a| a.namespace().is_none())
            .map(|a| (a.name().to_string(), a.value().to_string()))
            .collect(),
        line,
        ..Node::default()
    };
    for c in n.children() {
        if c.is_element() {
            out.children.push(xml_node(file, doc, c, depth + 1)?);
        } else if c.is_text() {
            out.text.push_str(c.text().unwrap_or_default());
        }
    }
    Ok(out)
}

/// The refusal of an element deeper than [`MAX_DEPTH`], at `at`.
fn too_deep(at: String) -> ImportError {
    ImportError::TooDeep { at, max: MAX_DEPTH }
}

/// Refuse what the YAML loader would expand or recurse on, from the parser's events
/// alone (nothing is built): an alias, and nesting deeper than [`MAX_DEPTH`].
fn yaml_shape(file: &str, text: &str) -> Result<(), ImportError> {
    use yaml_rust2::parser::{Event, Parser};
    let mut parser = Parser::new_from_str(text);
    let mut depth = 0usize;
    loop {
        let (event, mark) = parser
            .next_token()
            .map_err(|e| layout_error(file, format!("not well-formed YAML: {e}")))?;
        let at = || format!("{file}:{}", mark.line());
        match event {
            Event::StreamEnd => return Ok(()),
            Event::Alias(_) => {
                let name = alias_name(text, mark.line(), mark.col());
                return Err(ImportError::YamlAlias { at: at(), name });
            }
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(too_deep(at()));
                }
            }
            Event::SequenceEnd | Event::MappingEnd => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
}

/// The name of the alias at `line` (1-based) and `col` (0-based, as the YAML parser
/// counts) of `text`, when it is there.
fn alias_name(text: &str, line: usize, col: usize) -> Option<String> {
    let rest: String = text
        .lines()
        .nth(line.saturating_sub(1))
        .unwrap_or_default()
        .chars()
        .skip(col)
        .take_while(|c| !c.is_whitespace() && !",[]{}".contains(*c))
        .take(64)
        .collect();
    rest.strip_prefix('*')
        .filter(|name| !name.is_empty())
        .map(str::to_string)
}

fn yaml(file: &str, text: &str) -> Result<Node, ImportError> {
    use yaml_rust2::{Yaml, YamlLoader};
    yaml_shape(file, text)?;
    let docs = YamlLoader::load_from_str(text)
        .map_err(|e| layout_error(file, format!("not well-formed YAML: {e}")))?;
    let [Yaml::Hash(map)] = docs.as_slice() else {
        return Err(layout_error(
            file,
            "a YAML changelog is one document, a map holding `databaseChangeLog`",
        ));
    };
    let mut root = Node {
        name: "databaseChangeLog".into(),
        ..Node::default()
    };
    match map.get(&Yaml::String("databaseChangeLog".into())) {
        Some(Yaml::Array(items)) => {
            for item in items {
                root.children.extend(yaml_items(file, item)?);
            }
            Ok(root)
        }
        Some(Yaml::Null) => Ok(root),
        _ => Err(layout_error(
            file,
            "`databaseChangeLog` must be a list of changesets and includes",
        )),
    }
}

/// A scalar as text (`true`, `12`, `a b`); None for a map or a list.
fn scalar(y: &yaml_rust2::Yaml) -> Option<String> {
    use yaml_rust2::Yaml;
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A list item: a one-key map, an element named by its key.
fn yaml_items(file: &str, item: &yaml_rust2::Yaml) -> Result<Vec<Node>, ImportError> {
    let yaml_rust2::Yaml::Hash(map) = item else {
        return Err(layout_error(
            file,
            "a list item of a YAML changelog must be a map (`- changeSet: …`)",
        ));
    };
    map.iter()
        .map(|(k, v)| yaml_node(file, &scalar(k).unwrap_or_default(), v))
        .collect()
}

/// The element `name` whose value is `v`.
fn yaml_node(file: &str, name: &str, v: &yaml_rust2::Yaml) -> Result<Node, ImportError> {
    use yaml_rust2::Yaml;
    let mut out = Node {
        name: name.to_string(),
        ..Node::default()
    };
    match v {
        Yaml::Hash(map) => {
            for (k, v) in map {
                let k = scalar(k).unwrap_or_default();
                match v {
                    Yaml::Array(items) if k == "changes" || k == "columns" => {
                        for item in items {
                            out.children.extend(yaml_items(file, item)?);
                        }
                    }
                    Yaml::Array(_) | Yaml::Hash(_) => out.children.push(yaml_node(file, &k, v)?),
                    // XML's text elements: `rollback: DROP TABLE t;`, `comment: …`.
                    _ if k == "rollback" || k == "comment" => {
                        out.children.push(yaml_node(file, &k, v)?)
                    }
                    Yaml::Null => {}
                    other => out.attrs.push((k, scalar(other).unwrap_or_default())),
                }
            }
        }
        Yaml::Array(items) => {
            for item in items {
                match scalar(item) {
                    Some(s) => out.text.push_str(&s),
                    None => out.children.extend(yaml_items(file, item)?),
                }
            }
        }
        Yaml::Null => {}
        other => out.text = scalar(other).unwrap_or_default(),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_and_yaml_read_into_the_same_tree() {
        let x = parse("c.xml", br#"<?xml version="1.0"?>
<databaseChangeLog xmlns="http://www.liquibase.org/xml/ns/dbchangelog">
  <changeSet id="1" author="ann">
    <createTable tableName="t"><column name="a" type="int"><constraints nullable="false"/></column></createTable>
    <rollback>DROP TABLE t;</rollback>
  </changeSet>
</databaseChangeLog>"#).unwrap();
        let y = parse("c.yaml", b"databaseChangeLog:\n  - changeSet:\n      id: 1\n      author: ann\n      changes:\n        - createTable:\n            tableName: t\n            columns:\n              - column:\n                  name: a\n                  type: int\n                  constraints:\n                    nullable: false\n      rollback: DROP TABLE t;\n").unwrap();
        let strip = |mut n: Node| {
            fn walk(n: &mut Node) {
                n.line = 0;
                n.text = n.text.trim().to_string();
                n.children.iter_mut().for_each(walk);
            }
            walk(&mut n);
            n
        };
        assert_eq!(strip(x), strip(y));
        assert!(parse(
            "c.xml",
            b"<!DOCTYPE x [<!ENTITY e 'x'>]><databaseChangeLog/>"
        )
        .is_err());
        assert!(parse("c.yaml", b"other: 1\n").is_err());
        assert!(parse("c.xml", b"<other/>").is_err());
    }

    #[test]
    fn aliases_and_nesting_past_the_bound_are_refused_by_line() {
        let refused = |file: &str, text: &str, says: &str| {
            let m = parse(file, text.as_bytes()).unwrap_err().to_string();
            assert!(m.contains(says), "{m}");
        };
        refused(
            "c.yaml",
            "a: &x [1, 2]\nb: [*x, *x]\ndatabaseChangeLog: []\n",
            "c.yaml:2: a YAML alias (`*x`)",
        );
        // Anchors alone copy nothing worth refusing.
        assert!(parse("c.yaml", b"a: &x [1]\ndatabaseChangeLog: []\n").is_ok());
        // The root map is 1 deep, the maps under `x` the rest: the 257th opens on line
        // 257 + 1.
        let yaml = |n: usize| {
            let mut t = String::from("databaseChangeLog: []\nx:\n");
            for i in 1..n {
                t.push_str(&format!("{}k:\n", " ".repeat(i)));
            }
            t.push_str(&format!("{}k: 1\n", " ".repeat(n)));
            t
        };
        assert!(parse("c.yaml", yaml(MAX_DEPTH - 1).as_bytes()).is_ok());
        refused(
            "c.yaml",
            &yaml(MAX_DEPTH),
            "c.yaml:258: elements nested more than 256 deep",
        );
        let xml = |n: usize| {
            format!(
                "<databaseChangeLog>\n{}{}</databaseChangeLog>",
                "<a>".repeat(n),
                "</a>".repeat(n)
            )
        };
        assert!(parse("c.xml", xml(MAX_DEPTH - 1).as_bytes()).is_ok());
        refused(
            "c.xml",
            &xml(MAX_DEPTH),
            "c.xml:2: elements nested more than 256 deep",
        );
    }
}
