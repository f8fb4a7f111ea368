//! [`Bulk`]: rows for one set-based write, queued one at a time and sent as a single
//! statement whose parameters are one array per column (`unnest($1::text[], …)`). A group
//! commit's claims then cost one `UPDATE tasks` and one `INSERT INTO claims` per batch
//! rather than one of each per claim: PostgreSQL's fixed cost per statement (bind, executor
//! start, the table's CHECK constraints read again) is paid once.
//!
//! Rows of one `Bulk` run in one statement, and the bulks gathered together go one after
//! another as whole statements, so no gathered row may depend on another's effect; a row
//! with a key replaces an earlier row with the same key (an `UPDATE … FROM unnest(…)` must
//! not see one target row twice). When rows are sent is [`Pipelined`](super::pipeline)'s
//! business: before any other statement, so that the order of effects is the order written.

use tokio_postgres::types::ToSql;

use crate::orchestrator::store::StoreError;

/// One value of a queued row; its variant is its column's array type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Text(Option<String>),
    Int(Option<i64>),
}

/// One column's values, as the array sent for it.
#[derive(Debug)]
enum Column {
    Text(Vec<Option<String>>),
    Int(Vec<Option<i64>>),
}

impl Column {
    fn of(v: &Value) -> Self {
        match v {
            Value::Text(_) => Self::Text(Vec::new()),
            Value::Int(_) => Self::Int(Vec::new()),
        }
    }

    /// Puts `v` at `at` (`None`: appends it), if it is of this column's type.
    fn put(&mut self, at: Option<usize>, v: Value) {
        fn set<T>(col: &mut Vec<T>, at: Option<usize>, v: T) {
            match at.and_then(|i| col.get_mut(i)) {
                Some(slot) => *slot = v,
                None => col.push(v),
            }
        }
        match (self, v) {
            (Self::Text(col), Value::Text(v)) => set(col, at, v),
            (Self::Int(col), Value::Int(v)) => set(col, at, v),
            // `Bulk::push` checks the types before it puts anything.
            _ => {}
        }
    }

    fn into_param(self) -> Box<dyn ToSql + Sync + Send> {
        match self {
            Self::Text(v) => Box::new(v),
            Self::Int(v) => Box::new(v),
        }
    }
}

/// Rows waiting to be sent as one statement; see the module doc.
#[derive(Debug)]
pub struct Bulk {
    sql: &'static str,
    /// Each row's key, if it has one.
    keys: Vec<Option<String>>,
    columns: Vec<Column>,
}

impl Bulk {
    /// Rows for `sql`, whose parameter `$n` is the array of the rows' `n`th values.
    pub fn new(sql: &'static str) -> Self {
        Self {
            sql,
            keys: Vec::new(),
            columns: Vec::new(),
        }
    }

    pub fn sql(&self) -> &'static str {
        self.sql
    }

    /// Adds a row, replacing the row with the same `key` if there is one. Every row has the
    /// same number of values, each of its column's type; a row that does not fit is refused
    /// and nothing of it is kept.
    pub fn push(&mut self, key: Option<String>, row: Vec<Value>) -> Result<(), StoreError> {
        if self.keys.is_empty() {
            self.columns = row.iter().map(Column::of).collect();
        }
        let fits = row.len() == self.columns.len()
            && row
                .iter()
                .zip(&self.columns)
                .all(|(v, c)| std::mem::discriminant(&Column::of(v)) == std::mem::discriminant(c));
        if !fits {
            return Err(StoreError::Backend(format!(
                "a row of {} values does not fit the set-based write `{}`",
                row.len(),
                self.sql
            )));
        }
        let at = key
            .as_ref()
            .and_then(|k| self.keys.iter().position(|have| have.as_ref() == Some(k)));
        if at.is_none() {
            self.keys.push(key);
        }
        for (column, v) in self.columns.iter_mut().zip(row) {
            column.put(at, v);
        }
        Ok(())
    }

    /// The statement and its parameters (one array per column) for every row pushed.
    pub fn into_statement(self) -> (&'static str, Vec<Box<dyn ToSql + Sync + Send>>) {
        (
            self.sql,
            self.columns.into_iter().map(Column::into_param).collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Value {
        Value::Text(Some(s.into()))
    }

    #[test]
    fn a_keyed_row_replaces_the_earlier_one_in_place() {
        let mut b = Bulk::new("x");
        b.push(Some("a".into()), vec![text("a"), Value::Int(Some(1))])
            .unwrap();
        b.push(Some("b".into()), vec![text("b"), Value::Int(None)])
            .unwrap();
        b.push(Some("a".into()), vec![text("a"), Value::Int(Some(3))])
            .unwrap();
        b.push(None, vec![text("c"), Value::Int(Some(4))]).unwrap();
        b.push(None, vec![text("c"), Value::Int(Some(5))]).unwrap();
        assert_eq!(b.keys.len(), 4);
        let Column::Int(ints) = &b.columns[1] else {
            panic!("{:?}", b.columns)
        };
        assert_eq!(ints, &[Some(3), None, Some(4), Some(5)]);
    }

    #[test]
    fn a_row_that_does_not_fit_is_refused_and_nothing_of_it_kept() {
        let mut b = Bulk::new("x");
        b.push(None, vec![text("a"), Value::Int(Some(1))]).unwrap();
        assert!(b.push(None, vec![text("b")]).is_err());
        assert!(b.push(None, vec![Value::Int(Some(2)), text("b")]).is_err());
        assert_eq!(b.keys.len(), 1);
        assert!(b.columns.iter().all(|c| match c {
            Column::Text(v) => v.len() == 1,
            Column::Int(v) => v.len() == 1,
        }));
    }
}
