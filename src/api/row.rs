//! Reading rows of any relation, view or subquery in place: a composite datum is stored in a cached slot
//! and deformed only up to the last column a rule needs, as the executor does for a hand-written CASE.

use crate::rules::compile::{ElementSource, Elements};
use crate::rules::number::Numeric;
use crate::rules::time::USECS_PER_DAY;
use crate::rules::{Cell, ColumnType, Columns, Row};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::Cell as Slot;
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
    Json,
    Array(Elem),
    Other,
}

/// The element types of arrays rules read, with how each is stored in an array.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Elem {
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Numeric,
    Text,
    Bpchar,
}

impl Elem {
    fn of(typid: pg_sys::Oid) -> Option<(Elem, ColumnType)> {
        Some(match unsafe { pg_sys::getBaseType(typid) } {
            pg_sys::INT2OID => (Elem::Int2, ColumnType::Int),
            pg_sys::INT4OID => (Elem::Int4, ColumnType::Int),
            pg_sys::INT8OID => (Elem::Int8, ColumnType::Int),
            pg_sys::FLOAT4OID => (Elem::Float4, ColumnType::Float),
            pg_sys::FLOAT8OID => (Elem::Float8, ColumnType::Float),
            pg_sys::NUMERICOID => (Elem::Numeric, ColumnType::Numeric),
            pg_sys::TEXTOID | pg_sys::VARCHAROID => (Elem::Text, ColumnType::Text),
            pg_sys::BPCHAROID => (Elem::Bpchar, ColumnType::Text),
            _ => return None,
        })
    }

    /// typlen and typalign (bytes) of the element type
    fn storage(self) -> (i16, usize) {
        match self {
            Elem::Int2 => (2, 2),
            Elem::Int4 | Elem::Float4 => (4, 4),
            Elem::Int8 | Elem::Float8 => (8, 8),
            Elem::Numeric | Elem::Text | Elem::Bpchar => (-1, 4),
        }
    }
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
        pg_sys::NUMERICOID => (Kind::Numeric, ColumnType::Numeric),
        pg_sys::TEXTOID | pg_sys::VARCHAROID => (Kind::Text, ColumnType::Text),
        pg_sys::BPCHAROID => (Kind::Bpchar, ColumnType::Text),
        pg_sys::NAMEOID => (Kind::Name, ColumnType::Text),
        pg_sys::DATEOID => (Kind::Date, ColumnType::Date),
        pg_sys::TIMESTAMPOID => (Kind::Timestamp, ColumnType::Timestamp),
        pg_sys::TIMESTAMPTZOID => (Kind::Timestamp, ColumnType::TimestampTz),
        pg_sys::JSONBOID => (Kind::Json, ColumnType::Json),
        other if unsafe { pg_sys::get_element_type(other) } != pg_sys::InvalidOid => {
            match Elem::of(unsafe { pg_sys::get_element_type(other) }) {
                Some((elem, ty)) => (Kind::Array(elem), ColumnType::Array(Box::new(ty))),
                None => (Kind::Other, ColumnType::Other(type_name(other))),
            }
        }
        other => (Kind::Other, ColumnType::Other(type_name(other))),
    }
}

fn type_name(typid: pg_sys::Oid) -> String {
    unsafe { CStr::from_ptr(pg_sys::format_type_be(typid)) }
        .to_string_lossy()
        .into_owned()
}

/// A tuple descriptor's attributes. PostgreSQL 18 moved them behind the compact attributes
/// (`TupleDescAttr`); before that they were the descriptor's `attrs` array.
///
/// # Safety
/// `desc` must be a valid tuple descriptor that outlives the slice.
pub unsafe fn attributes<'a>(desc: pg_sys::TupleDesc) -> &'a [pg_sys::FormData_pg_attribute] {
    unsafe {
        let natts = (*desc).natts as usize;
        #[cfg(feature = "pg18")]
        {
            let first = (*desc).compact_attrs.as_ptr().add(natts).cast();
            std::slice::from_raw_parts(first, natts)
        }
        #[cfg(not(feature = "pg18"))]
        {
            (*desc).attrs.as_slice(natts)
        }
    }
}

/// Releases a descriptor from `lookup_rowtype_tupdesc`, as `ReleaseTupleDesc` does: only a reference-counted
/// one holds a reference (a record type shared with parallel workers, for one, does not).
///
/// # Safety
/// `desc` must come from `lookup_rowtype_tupdesc` in the current resource owner.
pub unsafe fn release_tupdesc(desc: pg_sys::TupleDesc) {
    unsafe {
        if (*desc).tdrefcount >= 0 {
            pg_sys::DecrTupleDescRefCount(desc);
        }
    }
}

/// The columns of a tuple descriptor, as the rule compiler sees them.
pub struct TupleColumns {
    relation: String,
    names: Vec<Option<String>>, // None for dropped columns
    types: Vec<ColumnType>,
    kinds: Vec<Kind>,
    typids: Vec<pg_sys::Oid>,
}

impl TupleColumns {
    /// # Safety
    /// `desc` must be a valid tuple descriptor.
    pub unsafe fn new(desc: pg_sys::TupleDesc, relation: String) -> Self {
        let attrs = unsafe { attributes(desc) };
        let mut cols = TupleColumns {
            relation,
            names: vec![],
            types: vec![],
            kinds: vec![],
            typids: vec![],
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
            cols.typids.push(att.atttypid);
        }
        cols
    }

    /// Columns of a table, view or other relation, by OID.
    /// The columns of a relation; `what` names whose relation it is when it no longer exists (42P01).
    pub fn of_relation(relid: pg_sys::Oid, what: &str) -> Self {
        unsafe {
            let rel = pg_sys::try_relation_open(relid, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
            if rel.is_null() {
                super::raise_with(
                    PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE,
                    format!("the relation of {what} does not exist"),
                    Some(format!(
                        "relation OID {} was dropped after the segmentation was defined",
                        relid.to_u32()
                    )),
                    Some("point segments.segmentation.source at an existing relation, or delete the segmentation".into()),
                );
            }
            let name = CStr::from_ptr(pg_sys::get_rel_name(relid))
                .to_string_lossy()
                .into_owned();
            let cols = TupleColumns::new((*rel).rd_att, name);
            pg_sys::relation_close(rel, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
            cols
        }
    }
}

impl TupleColumns {
    /// The name of column `i` (empty for a dropped one).
    pub fn name(&self, i: usize) -> &str {
        self.names[i].as_deref().unwrap_or_default()
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

/// Per-attribute storage facts, for deforming a tuple without calling into the server.
#[derive(Debug, Clone, Copy)]
struct Storage {
    len: i16,
    byval: bool,
    align: usize,
}

/// A row type seen at one call site: its columns, how each is stored, and the values of the current row.
/// Rows are deformed here, in Rust, lazily: a column is decoded (with those before it) the first time a rule
/// reads it, so a row that fails on its first column costs one column. No slot, no call into the server.
pub struct RowReader {
    pub typid: pg_sys::Oid,
    pub typmod: i32,
    pub columns: TupleColumns,
    storage: Vec<Storage>,
    values: Vec<Slot<pg_sys::Datum>>,
    nulls: Vec<Slot<bool>>,
    /// the current row, and how far it has been deformed
    row: Slot<Deform>,
    /// the database encoding is UTF-8
    utf8: bool,
    /// per column: an array's elements, or a jsonb's root, detoasted once per row
    varlenas: Vec<Varlena>,
    /// counts the rows stored, so that what was detoasted for one row is not taken for the next
    serial: Slot<u64>,
}

/// A varlena column of the current row, detoasted on first use; for arrays, also their reader.
struct Varlena {
    elem: Option<Elem>,
    utf8: bool,
    serial: Slot<u64>,
    ptr: Slot<*const u8>,
}

impl RowReader {
    /// Builds a reader for the row type of `header`.
    ///
    /// # Safety
    /// `header` must be a detoasted composite datum.
    pub unsafe fn new(header: pg_sys::HeapTupleHeader) -> Self {
        unsafe {
            let typid = (*header).t_choice.t_datum.datum_typeid;
            let typmod = (*header).t_choice.t_datum.datum_typmod;
            let desc = pg_sys::lookup_rowtype_tupdesc(typid, typmod);
            let relation = if typid == pg_sys::RECORDOID {
                "record".to_string()
            } else {
                CStr::from_ptr(pg_sys::format_type_be(typid))
                    .to_string_lossy()
                    .into_owned()
            };
            let reader = Self::from_desc(desc, typid, typmod, relation);
            release_tupdesc(desc);
            reader
        }
    }

    /// A reader for tuples of a known descriptor (e.g. a query result).
    ///
    /// # Safety
    /// `desc` must be a valid tuple descriptor.
    pub unsafe fn from_desc(
        desc: pg_sys::TupleDesc,
        typid: pg_sys::Oid,
        typmod: i32,
        relation: String,
    ) -> Self {
        unsafe {
            let natts = (*desc).natts as usize;
            let storage = attributes(desc)
                .iter()
                .map(|a| Storage {
                    len: a.attlen,
                    byval: a.attbyval,
                    align: match a.attalign as u8 {
                        b'd' => 8,
                        b'i' => 4,
                        b's' => 2,
                        _ => 1,
                    },
                })
                .collect();
            let columns = TupleColumns::new(desc, relation);
            let utf8 = pg_sys::GetDatabaseEncoding() == pg_sys::pg_enc::PG_UTF8 as i32;
            let varlenas = (0..natts)
                .map(|i| Varlena {
                    elem: match columns.kinds[i] {
                        Kind::Array(elem) => Some(elem),
                        _ => None,
                    },
                    utf8,
                    serial: Slot::new(0),
                    ptr: Slot::new(std::ptr::null()),
                })
                .collect();
            RowReader {
                typid,
                typmod,
                columns,
                storage,
                values: (0..natts)
                    .map(|_| Slot::new(pg_sys::Datum::from(0)))
                    .collect(),
                nulls: (0..natts).map(|_| Slot::new(true)).collect(),
                row: Slot::new(Deform::default()),
                utf8,
                varlenas,
                serial: Slot::new(0),
            }
        }
    }

    /// The raw value of column `col` of the row last stored (None when NULL).
    pub fn datum(&self, col: usize) -> Option<pg_sys::Datum> {
        self.deform_to(col);
        (!self.nulls[col].get()).then(|| self.values[col].get())
    }

    /// # Safety
    /// `header` must be a detoasted composite datum.
    pub unsafe fn same_type(&self, header: pg_sys::HeapTupleHeader) -> bool {
        unsafe {
            (*header).t_choice.t_datum.datum_typeid == self.typid
                && (*header).t_choice.t_datum.datum_typmod == self.typmod
        }
    }

    /// Makes `header` the current row; its columns are decoded on first read.
    ///
    /// # Safety
    /// `header` must be a detoasted composite datum of this reader's type, alive while the row is read.
    pub unsafe fn store(&mut self, header: pg_sys::HeapTupleHeader) {
        self.serial.set(self.serial.get() + 1);
        unsafe {
            self.row.set(Deform {
                header,
                has_nulls: (*header).t_infomask as u32 & pg_sys::HEAP_HASNULL != 0,
                stored: ((*header).t_infomask2 as u32 & pg_sys::HEAP_NATTS_MASK) as usize,
                done: 0,
                offset: 0,
            });
        }
    }

    /// Decodes columns up to and including `col` (heap_deform_tuple's walk: null bitmap, alignment, lengths).
    fn deform_to(&self, col: usize) {
        let mut r = self.row.get();
        if r.done > col {
            return;
        }
        unsafe {
            let header = r.header;
            let bits = (*header).t_bits.as_ptr();
            let data = (header as *const u8).add((*header).t_hoff as usize);
            while r.done <= col {
                let i = r.done;
                r.done += 1;
                if i >= r.stored || (r.has_nulls && *bits.add(i >> 3) & (1 << (i & 7)) == 0) {
                    self.nulls[i].set(true);
                    continue;
                }
                let st = self.storage[i];
                // a varlena with a 1-byte header is never padded: a non-zero byte here starts one
                if !(st.len == -1 && *data.add(r.offset) != 0) {
                    r.offset = (r.offset + st.align - 1) & !(st.align - 1);
                }
                let p = data.add(r.offset);
                self.values[i].set(if st.byval {
                    match st.len {
                        1 => pg_sys::Datum::from(*p as i8 as i64),
                        2 => pg_sys::Datum::from(p.cast::<i16>().read_unaligned() as i64),
                        4 => pg_sys::Datum::from(p.cast::<i32>().read_unaligned() as i64),
                        _ => pg_sys::Datum::from(p.cast::<i64>().read_unaligned()),
                    }
                } else {
                    pg_sys::Datum::from(p)
                });
                self.nulls[i].set(false);
                r.offset += match st.len {
                    -1 => pgrx::varlena::varsize_any(p as *const pg_sys::varlena),
                    -2 => CStr::from_ptr(p.cast()).to_bytes().len() + 1,
                    n => n as usize,
                };
            }
        }
        self.row.set(r);
    }

    /// The row last stored.
    pub fn view(&self) -> RowView<'_> {
        RowView { reader: self }
    }
}

/// Where the current row stands in being deformed.
#[derive(Debug, Clone, Copy)]
struct Deform {
    header: pg_sys::HeapTupleHeader,
    has_nulls: bool,
    stored: usize,
    /// columns decoded so far
    done: usize,
    /// byte offset of the next column in the tuple data
    offset: usize,
}

impl Default for Deform {
    fn default() -> Self {
        Deform {
            header: std::ptr::null_mut(),
            has_nulls: false,
            stored: 0,
            done: 0,
            offset: 0,
        }
    }
}

/// True when a varlena is stored inline and uncompressed, so its bytes can be read where they are.
unsafe fn is_plain(p: *const pg_sys::varlena) -> bool {
    unsafe {
        pgrx::varlena::varatt_is_4b_u(p)
            || (pgrx::varlena::varatt_is_1b(p) && !pgrx::varlena::varatt_is_1b_e(p))
    }
}

/// The bytes of a text-like varlena, detoasting only when it is compressed or out of line.
///
/// # Safety
/// `d` must be a non-null varlena datum.
pub unsafe fn varlena_bytes<'a>(d: pg_sys::Datum) -> &'a [u8] {
    unsafe {
        let mut v = d.cast_mut_ptr::<pg_sys::varlena>();
        if !is_plain(v) {
            v = pg_sys::pg_detoast_datum_packed(v);
        }
        let len = pgrx::varlena::varsize_any_exhdr(v);
        std::slice::from_raw_parts(pgrx::varlena::vardata_any(v) as *const u8, len)
    }
}

/// A varlena datum's bytes as stored, header included, without detoasting: for a TOASTed value its TOAST
/// pointer, which identifies the value. A cheap key for per-call-site caches of a constant argument.
///
/// # Safety
/// `d` must be a non-null varlena datum.
pub unsafe fn stored_bytes<'a>(d: pg_sys::Datum) -> &'a [u8] {
    unsafe {
        let v = d.cast_mut_ptr::<pg_sys::varlena>();
        std::slice::from_raw_parts(v as *const u8, pgrx::varlena::varsize_any(v))
    }
}

/// A jsonb datum as a serde value. pgrx's own conversion panics where serde_json refuses the text: numbers
/// beyond float8 (22003) and nesting deeper than serde's limit of 128 (54001); here they are errors.
///
/// # Safety
/// `d` must be a non-null jsonb datum.
pub unsafe fn jsonb_value(d: pg_sys::Datum, what: &str) -> crate::error::Result<serde_json::Value> {
    let text = unsafe {
        let cstr = pg_sys::OidOutputFunctionCall(pg_sys::Oid::from(pg_sys::F_JSONB_OUT), d);
        let text = CStr::from_ptr(cstr).to_string_lossy().into_owned();
        pg_sys::pfree(cstr.cast());
        text
    };
    serde_json::from_str(&text).map_err(|e| {
        if e.to_string().contains("recursion limit") {
            crate::error::SegError::TooComplex {
                message: format!("{what} is nested too deeply"),
                hint: format!(
                    "rules nest at most {} levels",
                    crate::rules::ast::MAX_RULE_DEPTH
                ),
            }
        } else {
            crate::error::SegError::out_of_range(
                format!("{what} holds a number outside the range of double precision"),
                "rule values are compared as float8: use numbers between -1.7e308 and 1.7e308",
            )
        }
    })
}

/// Detoasts a composite argument datum (a no-op for the usual in-memory row).
///
/// # Safety
/// `datum` must be a non-null composite datum.
pub unsafe fn composite_header(datum: pg_sys::Datum) -> pg_sys::HeapTupleHeader {
    unsafe {
        let v = datum.cast_mut_ptr::<pg_sys::varlena>();
        if pgrx::varlena::varatt_is_4b_u(v) {
            v as pg_sys::HeapTupleHeader
        } else {
            pg_sys::pg_detoast_datum(v) as pg_sys::HeapTupleHeader
        }
    }
}

pub struct RowView<'a> {
    reader: &'a RowReader,
}

impl RowView<'_> {
    /// The raw value of column `col` (None when NULL).
    pub fn datum(&self, col: usize) -> Option<pg_sys::Datum> {
        self.reader.datum(col)
    }
    /// The type of column `col`.
    pub fn type_of(&self, col: usize) -> pg_sys::Oid {
        self.reader.columns.typids[col]
    }
}

impl Row for RowView<'_> {
    fn cell(&self, col: usize) -> Cell<'_> {
        unsafe {
            self.reader.deform_to(col);
            if self.reader.nulls[col].get() {
                return Cell::Null;
            }
            let d = self.reader.values[col].get();
            match self.reader.columns.kinds[col] {
                Kind::Bool => Cell::Bool(d.value() != 0),
                Kind::Int2 => Cell::Int(d.value() as i16 as i64),
                Kind::Int4 => Cell::Int(d.value() as i32 as i64),
                Kind::Int8 => Cell::Int(d.value() as i64),
                Kind::Float4 => Cell::Float(f32::from_bits(d.value() as u32) as f64),
                Kind::Float8 => Cell::Float(f64::from_bits(d.value() as u64)),
                Kind::Numeric => Cell::Numeric(numeric_parts(d)),
                Kind::Text => Cell::Text(text_str(d, false, self.reader.utf8)),
                Kind::Bpchar => Cell::Text(text_str(d, true, self.reader.utf8)),
                Kind::Name => Cell::Text(
                    CStr::from_ptr(d.cast_mut_ptr::<std::ffi::c_char>())
                        .to_str()
                        .unwrap_or(""),
                ),
                Kind::Date => Cell::Time(date_as_timestamp(d.value() as i32)),
                Kind::Timestamp => Cell::Time(d.value() as i64),
                Kind::Array(_) => Cell::Array(Elements(self.reader.varlena(col, d))),
                Kind::Json | Kind::Other => Cell::Opaque,
            }
        }
    }

    fn float(&self, col: usize) -> Option<f64> {
        match self.cell(col) {
            Cell::Int(i) => Some(i as f64),
            Cell::Float(f) => Some(f),
            // as `::float8` converts it (an error beyond double's range, as in the SQL text)
            Cell::Numeric(_) => Some(unsafe { numeric_to_f64(self.reader.values[col].get()) }),
            _ => None,
        }
    }

    fn related(
        &self,
        lookup: &crate::rules::related::Lookup,
        f: &mut dyn FnMut(Cell) -> bool,
    ) -> bool {
        super::related::run(self, lookup, f)
    }

    fn days(&self, col: usize) -> Option<i64> {
        match self.reader.columns.kinds[col] {
            Kind::Date => self.reader.datum(col).map(|d| d.value() as i32 as i64),
            _ => None,
        }
    }

    fn json_field(&self, col: usize, keys: &[String]) -> Cell<'_> {
        let Some(d) = self.reader.datum(col) else {
            return Cell::Null;
        };
        if self.reader.columns.kinds[col] != Kind::Json {
            return Cell::Null;
        }
        let root = self.reader.varlena(col, d).ptr.get() as *mut pg_sys::Jsonb;
        unsafe { json_field(&raw mut (*root).root, keys, self.reader.utf8) }
    }
}

/// The JSON value at `keys` below an object container, as a cell borrowing the container's bytes.
///
/// # Safety
/// `container` must point into a detoasted jsonb that outlives the cell.
unsafe fn json_field<'a>(
    mut container: *mut pg_sys::JsonbContainer,
    keys: &[String],
    utf8: bool,
) -> Cell<'a> {
    unsafe {
        let mut v: pg_sys::JsonbValue = std::mem::zeroed();
        for (i, key) in keys.iter().enumerate() {
            if (*container).header & pg_sys::JB_FOBJECT == 0 {
                return Cell::Null;
            }
            let found = pg_sys::getKeyJsonValueFromContainer(
                container,
                key.as_ptr().cast(),
                key.len() as i32,
                &mut v,
            );
            if found.is_null() {
                return Cell::Null;
            }
            if i + 1 < keys.len() {
                if v.type_ != pg_sys::jbvType::jbvBinary {
                    return Cell::Null;
                }
                container = v.val.binary.data;
            }
        }
        match v.type_ {
            pg_sys::jbvType::jbvString => {
                let bytes = std::slice::from_raw_parts(
                    v.val.string.val as *const u8,
                    v.val.string.len as usize,
                );
                Cell::Text(checked_str(bytes, utf8))
            }
            pg_sys::jbvType::jbvNumeric => {
                Cell::Numeric(numeric_parts(pg_sys::Datum::from(v.val.numeric)))
            }
            pg_sys::jbvType::jbvBool => Cell::Bool(v.val.boolean),
            pg_sys::jbvType::jbvNull => Cell::Null,
            _ => Cell::Opaque,
        }
    }
}

impl RowReader {
    /// The varlena column `col` (datum `d`) of the current row, detoasted once per row.
    fn varlena(&self, col: usize, d: pg_sys::Datum) -> &Varlena {
        let v = &self.varlenas[col];
        if v.serial.get() != self.serial.get() || v.ptr.get().is_null() {
            let p = unsafe { pg_sys::pg_detoast_datum(d.cast_mut_ptr()) };
            v.ptr.set(p as *const u8);
            v.serial.set(self.serial.get());
        }
        v
    }
}

impl ElementSource for Varlena {
    fn count(&self) -> usize {
        unsafe {
            let a = self.ptr.get() as *const pg_sys::ArrayType;
            let dims = (a as *const u8).add(size_of::<pg_sys::ArrayType>()) as *const i32;
            (0..(*a).ndim as usize)
                .map(|i| *dims.add(i) as usize)
                .product::<usize>()
                * ((*a).ndim > 0) as usize
        }
    }

    /// Walks the elements as array_iter does: a null bitmap (bit set: not NULL), then the values, each at
    /// its type's alignment.
    fn any(&self, f: &mut dyn FnMut(Cell) -> bool) -> bool {
        let Some(elem) = self.elem else {
            return false;
        };
        let (len, align) = elem.storage();
        unsafe {
            let a = self.ptr.get() as *const pg_sys::ArrayType;
            let ndim = (*a).ndim as usize;
            let header = size_of::<pg_sys::ArrayType>() + 2 * 4 * ndim;
            let (bitmap, data) = match (*a).dataoffset {
                0 => (std::ptr::null(), (a as *const u8).add((header + 7) & !7)),
                off => (
                    (a as *const u8).add(header),
                    (a as *const u8).add(off as usize),
                ),
            };
            let mut offset = 0usize;
            for i in 0..self.count() {
                if !bitmap.is_null() && *bitmap.add(i >> 3) & (1 << (i & 7)) == 0 {
                    if f(Cell::Null) {
                        return true;
                    }
                    continue;
                }
                offset = (offset + align - 1) & !(align - 1);
                let p = data.add(offset);
                let cell = match elem {
                    Elem::Int2 => Cell::Int(p.cast::<i16>().read_unaligned() as i64),
                    Elem::Int4 => Cell::Int(p.cast::<i32>().read_unaligned() as i64),
                    Elem::Int8 => Cell::Int(p.cast::<i64>().read_unaligned()),
                    Elem::Float4 => Cell::Float(p.cast::<f32>().read_unaligned() as f64),
                    Elem::Float8 => Cell::Float(p.cast::<f64>().read_unaligned()),
                    Elem::Numeric => Cell::Numeric(numeric_parts(pg_sys::Datum::from(p))),
                    Elem::Text => Cell::Text(text_str(pg_sys::Datum::from(p), false, self.utf8)),
                    Elem::Bpchar => Cell::Text(text_str(pg_sys::Datum::from(p), true, self.utf8)),
                };
                offset += match len {
                    -1 => pgrx::varlena::varsize_any(p as *const pg_sys::varlena),
                    n => n as usize,
                };
                if f(cell) {
                    return true;
                }
            }
            false
        }
    }
}

/// A date as the timestamp of its midnight, as PostgreSQL compares a date with a timestamp: dates after
/// the last timestamp (294276 AD; dates go on to 5874897 AD) sort after every finite timestamp and before
/// 'infinity' (date_cmp_timestamp's rule), so they take the one value in between.
fn date_as_timestamp(days: i32) -> i64 {
    // days from 2000-01-01 to 294277-01-01, the end of the timestamp range
    const TIMESTAMP_END_DAYS: i64 = 109_203_528 - 2_451_545;
    match days {
        i32::MIN => i64::MIN,
        i32::MAX => i64::MAX,
        _ if days as i64 >= TIMESTAMP_END_DAYS => i64::MAX - 1,
        _ => days as i64 * USECS_PER_DAY,
    }
}

/// A numeric datum's sign, weight and base-10000 digits, borrowed from the datum.
///
/// # Safety
/// `d` must be a non-null numeric datum that outlives the result.
pub unsafe fn numeric_parts<'a>(d: pg_sys::Datum) -> Numeric<'a> {
    let body = unsafe { varlena_bytes(d) };
    let word = |i: usize| u16::from_ne_bytes([body[i], body[i + 1]]);
    let header = if body.len() >= 2 { word(0) } else { 0xC000 };
    let (negative, weight, start) = match header & 0xC000 {
        // special values: NaN, +Infinity, -Infinity (NUMERIC_EXT_SIGNMASK)
        0xC000 => {
            return match header & 0xF000 {
                0xD000 => Numeric::Infinity,
                0xF000 => Numeric::NegInfinity,
                _ => Numeric::NaN,
            }
        }
        0x8000 => {
            // short format: sign and weight packed into the header word
            let w = (header & 0x003F) as i32;
            let w = if header & 0x0040 != 0 { w - 64 } else { w };
            (header & 0x2000 != 0, w, 2)
        }
        sign if body.len() >= 4 => (
            sign == 0x4000,
            i16::from_ne_bytes(word(2).to_ne_bytes()) as i32,
            4,
        ),
        _ => return Numeric::NaN,
    };
    let digits = &body[start..];
    Numeric::Finite {
        negative,
        weight,
        digits: &digits[..digits.len() / 2 * 2],
    }
}

/// Converts a numeric to the nearest double without going through text, as strtod would round it:
/// an exact integer mantissa of at most 2^53 scaled by an exact power of ten is one correctly rounded
/// operation. Anything else (NaN, infinities, long mantissas) takes PostgreSQL's own conversion.
pub unsafe fn numeric_to_f64(d: pg_sys::Datum) -> f64 {
    const POW10: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];
    let fast = match unsafe { numeric_parts(d) } {
        Numeric::Finite {
            negative,
            weight,
            digits,
        } if digits.len() <= 8 => {
            let ndigits = digits.len() / 2;
            let mantissa = digits.chunks_exact(2).fold(0u64, |m, p| {
                m * 10_000 + u16::from_ne_bytes([p[0], p[1]]) as u64
            });
            let exp10 = 4 * (weight - (ndigits as i32 - 1));
            match (mantissa < (1u64 << 53), exp10) {
                (true, 0..=22) => Some(mantissa as f64 * POW10[exp10 as usize]),
                (true, -22..=-1) => Some(mantissa as f64 / POW10[(-exp10) as usize]),
                _ => None,
            }
            .map(|x| if negative { -x } else { x })
        }
        _ => None,
    };
    fast.unwrap_or_else(|| unsafe {
        pgrx::direct_function_call::<f64>(pg_sys::numeric_float8, &[Some(d)]).unwrap_or(f64::NAN)
    })
}

/// Text in the database encoding as a str: a UTF-8 database guarantees valid text, so only other encodings
/// pay for the check (and rules refuse them).
fn checked_str(bytes: &[u8], utf8: bool) -> &str {
    let checked = if utf8 {
        Ok(unsafe { std::str::from_utf8_unchecked(bytes) })
    } else {
        std::str::from_utf8(bytes)
    };
    checked.unwrap_or_else(|_| {
        super::raise_with(
            PgSqlErrorCode::ERRCODE_CHARACTER_NOT_IN_REPERTOIRE,
            "pg_segments rules need UTF-8 text".into(),
            None,
            Some("create the database with ENCODING 'UTF8'".into()),
        )
    })
}

/// Borrows the characters of a text datum (detoasting if needed; a copy lives in the per-row context).
/// A UTF-8 database guarantees valid text, so only other encodings pay for the check.
unsafe fn text_str<'a>(d: pg_sys::Datum, trim_blank_padding: bool, utf8: bool) -> &'a str {
    unsafe {
        let s = checked_str(varlena_bytes(d), utf8);
        if trim_blank_padding {
            s.trim_end_matches(' ')
        } else {
            s
        }
    }
}
