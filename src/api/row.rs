//! Reading rows of any relation, view or subquery in place: a composite datum is stored in a cached slot
//! and deformed only up to the last column a rule needs, as the executor does for a hand-written CASE.

use crate::rules::time::USECS_PER_DAY;
use crate::rules::{Cell, ColumnType, Columns, Row};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::ffi::CStr;

/// How to turn one column's datum into a `Cell`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Numeric,
    Text,
    Bpchar,
    Name,
    Date,
    Timestamp,
    Other,
}

fn kind_of(typid: pg_sys::Oid) -> (Kind, ColumnType) {
    let base = unsafe { pg_sys::getBaseType(typid) };
    match base {
        pg_sys::BOOLOID => (Kind::Bool, ColumnType::Bool),
        pg_sys::INT2OID => (Kind::Int2, ColumnType::Int),
        pg_sys::INT4OID => (Kind::Int4, ColumnType::Int),
        pg_sys::INT8OID => (Kind::Int8, ColumnType::Int),
        pg_sys::FLOAT4OID => (Kind::Float4, ColumnType::Float),
        pg_sys::FLOAT8OID => (Kind::Float8, ColumnType::Float),
        pg_sys::NUMERICOID => (Kind::Numeric, ColumnType::Float),
        pg_sys::TEXTOID | pg_sys::VARCHAROID => (Kind::Text, ColumnType::Text),
        pg_sys::BPCHAROID => (Kind::Bpchar, ColumnType::Text),
        pg_sys::NAMEOID => (Kind::Name, ColumnType::Text),
        pg_sys::DATEOID => (Kind::Date, ColumnType::Date),
        pg_sys::TIMESTAMPOID => (Kind::Timestamp, ColumnType::Timestamp),
        pg_sys::TIMESTAMPTZOID => (Kind::Timestamp, ColumnType::TimestampTz),
        other => {
            let name = unsafe { CStr::from_ptr(pg_sys::format_type_be(other)) };
            (
                Kind::Other,
                ColumnType::Other(name.to_string_lossy().into_owned()),
            )
        }
    }
}

/// The columns of a tuple descriptor, as the rule compiler sees them.
pub struct TupleColumns {
    relation: String,
    names: Vec<Option<String>>, // None for dropped columns
    types: Vec<ColumnType>,
    kinds: Vec<Kind>,
}

impl TupleColumns {
    /// # Safety
    /// `desc` must be a valid tuple descriptor.
    pub unsafe fn new(desc: pg_sys::TupleDesc, relation: String) -> Self {
        let natts = unsafe { (*desc).natts } as usize;
        let attrs = unsafe { (*desc).attrs.as_slice(natts) };
        let mut cols = TupleColumns {
            relation,
            names: vec![],
            types: vec![],
            kinds: vec![],
        };
        for att in attrs {
            let (kind, ty) = if att.attisdropped {
                (Kind::Other, ColumnType::Other("dropped".into()))
            } else {
                kind_of(att.atttypid)
            };
            let name = unsafe { CStr::from_ptr(att.attname.data.as_ptr()) }
                .to_string_lossy()
                .into_owned();
            cols.names.push((!att.attisdropped).then_some(name));
            cols.types.push(ty);
            cols.kinds.push(kind);
        }
        cols
    }

    /// Columns of a table, view or other relation, by OID.
    pub fn of_relation(relid: pg_sys::Oid) -> Self {
        unsafe {
            let rel = pg_sys::relation_open(relid, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
            let name = CStr::from_ptr(pg_sys::get_rel_name(relid))
                .to_string_lossy()
                .into_owned();
            let cols = TupleColumns::new((*rel).rd_att, name);
            pg_sys::relation_close(rel, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
            cols
        }
    }
}

impl Columns for TupleColumns {
    fn lookup(&self, name: &str) -> Option<(usize, ColumnType)> {
        let i = self.names.iter().position(|n| n.as_deref() == Some(name))?;
        Some((i, self.types[i].clone()))
    }
    fn names(&self) -> Vec<String> {
        self.names.iter().flatten().cloned().collect()
    }
    fn relation_name(&self) -> String {
        self.relation.clone()
    }
}

/// A row type seen at one call site: its descriptor, a slot to deform into, and column conversions.
pub struct RowReader {
    pub typid: pg_sys::Oid,
    pub typmod: i32,
    pub columns: TupleColumns,
    slot: *mut pg_sys::TupleTableSlot,
    tuple: Box<pg_sys::HeapTupleData>,
    /// deform up to this many columns (the last one a rule reads)
    needed: i32,
}

impl RowReader {
    /// Builds a reader for the row type of `header`, allocating in `mcx` (the call site's context).
    ///
    /// # Safety
    /// `header` must be a detoasted composite datum.
    pub unsafe fn new(header: pg_sys::HeapTupleHeader, mcx: pg_sys::MemoryContext) -> Self {
        unsafe {
            let typid = (*header).t_choice.t_datum.datum_typeid;
            let typmod = (*header).t_choice.t_datum.datum_typmod;
            let old = pg_sys::MemoryContextSwitchTo(mcx);
            let shared = pg_sys::lookup_rowtype_tupdesc(typid, typmod);
            let desc = pg_sys::CreateTupleDescCopy(shared);
            pg_sys::DecrTupleDescRefCount(shared);
            let slot = pg_sys::MakeSingleTupleTableSlot(desc, &raw const pg_sys::TTSOpsHeapTuple);
            pg_sys::MemoryContextSwitchTo(old);
            let relation = if typid == pg_sys::RECORDOID {
                "record".to_string()
            } else {
                CStr::from_ptr(pg_sys::format_type_be(typid))
                    .to_string_lossy()
                    .into_owned()
            };
            let columns = TupleColumns::new(desc, relation);
            let natts = columns.names.len() as i32;
            RowReader {
                typid,
                typmod,
                columns,
                slot,
                tuple: Box::new(std::mem::zeroed()),
                needed: natts,
            }
        }
    }

    /// Limit deforming to the columns `used` (0-based positions).
    pub fn set_needed(&mut self, used: impl IntoIterator<Item = usize>) {
        self.needed = used.into_iter().map(|i| i as i32 + 1).max().unwrap_or(0);
    }

    pub fn same_type(&self, header: pg_sys::HeapTupleHeader) -> bool {
        unsafe {
            (*header).t_choice.t_datum.datum_typeid == self.typid
                && (*header).t_choice.t_datum.datum_typmod == self.typmod
        }
    }

    /// Stores the row and deforms the needed columns; `view` then reads cells from the slot.
    ///
    /// # Safety
    /// `header` must be a detoasted composite datum of this reader's type, alive while the view is used.
    pub unsafe fn store(&mut self, header: pg_sys::HeapTupleHeader) {
        unsafe {
            self.tuple.t_len = varsize(header as *const pg_sys::varlena) as u32;
            self.tuple.t_tableOid = pg_sys::InvalidOid;
            self.tuple.t_data = header;
            pg_sys::ExecStoreHeapTuple(&mut *self.tuple, self.slot, false);
            if self.needed > 0 {
                pg_sys::slot_getsomeattrs_int(self.slot, self.needed);
            }
        }
    }

    /// The row last stored.
    pub fn view(&self) -> RowView<'_> {
        RowView { reader: self }
    }
}

unsafe fn varsize(p: *const pg_sys::varlena) -> usize {
    unsafe { pgrx::varlena::varsize_any(p) }
}

/// Detoasts a composite argument datum.
///
/// # Safety
/// `datum` must be a non-null composite datum.
pub unsafe fn composite_header(datum: pg_sys::Datum) -> pg_sys::HeapTupleHeader {
    unsafe { pg_sys::pg_detoast_datum(datum.cast_mut_ptr()) as pg_sys::HeapTupleHeader }
}

pub struct RowView<'a> {
    reader: &'a RowReader,
}

impl Row for RowView<'_> {
    fn cell(&self, col: usize) -> Cell<'_> {
        unsafe {
            let slot = self.reader.slot;
            if *(*slot).tts_isnull.add(col) {
                return Cell::Null;
            }
            let d = *(*slot).tts_values.add(col);
            match self.reader.columns.kinds[col] {
                Kind::Bool => Cell::Bool(d.value() != 0),
                Kind::Int2 => Cell::Int(d.value() as i16 as i64),
                Kind::Int4 => Cell::Int(d.value() as i32 as i64),
                Kind::Int8 => Cell::Int(d.value() as i64),
                Kind::Float4 => Cell::Float(f32::from_bits(d.value() as u32) as f64),
                Kind::Float8 => Cell::Float(f64::from_bits(d.value() as u64)),
                Kind::Numeric => Cell::Float(
                    pgrx::direct_function_call::<f64>(pg_sys::numeric_float8, &[Some(d)])
                        .unwrap_or(f64::NAN),
                ),
                Kind::Text => Cell::Text(text_str(d, false)),
                Kind::Bpchar => Cell::Text(text_str(d, true)),
                Kind::Name => Cell::Text(
                    CStr::from_ptr(d.cast_mut_ptr::<std::ffi::c_char>())
                        .to_str()
                        .unwrap_or(""),
                ),
                Kind::Date => {
                    let days = d.value() as i32;
                    Cell::Time(match days {
                        i32::MIN => i64::MIN,
                        i32::MAX => i64::MAX,
                        _ => days as i64 * USECS_PER_DAY,
                    })
                }
                Kind::Timestamp => Cell::Time(d.value() as i64),
                Kind::Other => Cell::Null,
            }
        }
    }
}

/// Borrows the characters of a text datum (detoasting if needed; a copy lives in the per-row context).
unsafe fn text_str<'a>(d: pg_sys::Datum, trim_blank_padding: bool) -> &'a str {
    unsafe {
        let v = pg_sys::pg_detoast_datum_packed(d.cast_mut_ptr());
        let len = pgrx::varlena::varsize_any_exhdr(v);
        let bytes = std::slice::from_raw_parts(pgrx::varlena::vardata_any(v) as *const u8, len);
        let s = std::str::from_utf8(bytes).unwrap_or_else(|_| {
            super::raise_with(
                PgSqlErrorCode::ERRCODE_CHARACTER_NOT_IN_REPERTOIRE,
                "pg_segments rules need UTF-8 text".into(),
                None,
                Some("create the database with ENCODING 'UTF8'".into()),
            )
        });
        if trim_blank_padding {
            s.trim_end_matches(' ')
        } else {
            s
        }
    }
}
