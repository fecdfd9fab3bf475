//! DROP, TRUNCATE and the type statements a release removes an enum label with
//! (recreate the type: rename the old one, create the new one, cast the columns,
//! drop the old one).

use super::expr::type_ref;
use super::{named, node, rel, strings, One, Relation, Step};
use pg_query::protobuf::{DropBehavior, ObjectType};
use pg_query::NodeEnum as N;

fn cascade(behavior: i32) -> bool {
    behavior == DropBehavior::DropCascade as i32
}

pub(super) fn drop_stmt(s: &pg_query::protobuf::DropStmt) -> Vec<One> {
    let cascade = cascade(s.behavior);
    let kind = ObjectType::try_from(s.remove_type).ok();
    s.objects
        .iter()
        .filter_map(node)
        .filter_map(|o| match (kind, o) {
            (Some(ObjectType::ObjectTable), N::List(l)) => Some((
                "DROP TABLE",
                named(&l.items)?,
                Step::DropTable {
                    cascade,
                    if_exists: s.missing_ok,
                },
            )),
            (Some(ObjectType::ObjectSchema), N::String(name)) => Some((
                "DROP SCHEMA",
                Relation {
                    schema: None,
                    name: name.sval.clone(),
                },
                Step::DropSchema { cascade },
            )),
            (Some(k @ (ObjectType::ObjectType | ObjectType::ObjectDomain)), N::TypeName(tn)) => {
                let t = type_ref(tn)?;
                let what = if k == ObjectType::ObjectType {
                    "DROP TYPE"
                } else {
                    "DROP DOMAIN"
                };
                let mut names = t.names;
                let name = names.pop()?;
                Some((
                    what,
                    Relation {
                        schema: names.pop(),
                        name,
                    },
                    Step::DropType { cascade },
                ))
            }
            (Some(k), N::List(l)) if touched(k) => Some(("DROP", named(&l.items)?, Step::Touches)),
            (Some(k), N::ObjectWithArgs(f)) if touched(k) => {
                Some(("DROP", named(&f.objname)?, Step::Touches))
            }
            _ => None,
        })
        .collect()
}

/// Objects without rows whose DROP a later DROP … CASCADE prediction must know of.
fn touched(k: ObjectType) -> bool {
    matches!(
        k,
        ObjectType::ObjectView
            | ObjectType::ObjectMatview
            | ObjectType::ObjectSequence
            | ObjectType::ObjectIndex
            | ObjectType::ObjectForeignTable
            | ObjectType::ObjectFunction
            | ObjectType::ObjectProcedure
            | ObjectType::ObjectRoutine
            | ObjectType::ObjectAggregate
    )
}

pub(super) fn truncate(s: &pg_query::protobuf::TruncateStmt) -> Vec<One> {
    let cascade = cascade(s.behavior);
    s.relations
        .iter()
        .filter_map(node)
        .filter_map(|r| match r {
            N::RangeVar(rv) => Some((
                "TRUNCATE",
                rel(&Some(rv.clone())),
                Step::Truncate { cascade },
            )),
            _ => None,
        })
        .collect()
}

pub(super) fn create_enum(s: &pg_query::protobuf::CreateEnumStmt) -> Vec<One> {
    let Some(t) = named(&s.type_name) else {
        return vec![];
    };
    vec![(
        "CREATE TYPE … AS ENUM",
        t,
        Step::CreateEnum {
            labels: strings(&s.vals),
        },
    )]
}

pub(super) fn rename_type(s: &pg_query::protobuf::RenameStmt) -> Vec<One> {
    if s.rename_type != ObjectType::ObjectType as i32 {
        return vec![];
    }
    let Some(N::List(l)) = s.object.as_deref().and_then(node) else {
        return vec![];
    };
    let Some(t) = named(&l.items) else {
        return vec![];
    };
    vec![(
        "ALTER TYPE … RENAME TO",
        t,
        Step::RenameType {
            to: s.newname.clone(),
        },
    )]
}
