//! A serializer that only inspects: it refuses any floating-point number (finite or not)
//! before a document is canonicalised. serde_json silently turns NaN and infinity into
//! `null` inside arrays and maps, so the check must happen on the Rust value itself. On the
//! way it notes whether every integer is within 2^53, so the caller re-reads the written JSON
//! (to name the path of a too-large number) only when one may not be.

use std::cell::Cell;
use std::fmt;

use serde::ser::{self, Serialize};

/// The largest integer every JSON implementation represents exactly (2^53 - 1).
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// The value held a float.
#[derive(Debug)]
pub struct FloatFound;

impl fmt::Display for FloatFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a floating-point number")
    }
}

impl std::error::Error for FloatFound {}

impl ser::Error for FloatFound {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Self
    }
}

/// What the walk saw of the numbers, when it found no float.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Integers {
    /// Every number is an integer within ±(2^53 - 1).
    Safe,
    /// Some number may not be: an integer beyond 2^53, or a number serde_json keeps as text
    /// (`arbitrary_precision`); the written JSON has to be checked.
    Unsure,
}

/// Walks `value`, failing on the first `f32`/`f64`; says whether every integer is safe.
pub fn refuse_floats<T: Serialize>(value: &T) -> Result<Integers, FloatFound> {
    let unsure = Cell::new(false);
    value.serialize(Walker { unsure: &unsure })?;
    Ok(if unsure.get() {
        Integers::Unsure
    } else {
        Integers::Safe
    })
}

#[derive(Clone, Copy)]
struct Walker<'a> {
    unsure: &'a Cell<bool>,
}

impl Walker<'_> {
    fn note(self, safe: bool) {
        if !safe {
            self.unsure.set(true);
        }
    }
}

type R = Result<(), FloatFound>;

macro_rules! accept {
    ($($f:ident($($t:ty),*)),* $(,)?) => {$(
        fn $f(self, $(_: $t),*) -> R { Ok(()) }
    )*};
}

impl ser::Serializer for Walker<'_> {
    type Ok = ();
    type Error = FloatFound;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    accept!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_char(char),
        serialize_str(&str),
        serialize_bytes(&[u8]),
        serialize_none(),
        serialize_unit(),
        serialize_unit_struct(&'static str),
        serialize_unit_variant(&'static str, u32, &'static str),
    );

    fn serialize_i64(self, v: i64) -> R {
        self.note(v.unsigned_abs() <= MAX_SAFE_INTEGER);
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> R {
        self.note(v.unsigned_abs() <= u128::from(MAX_SAFE_INTEGER));
        Ok(())
    }
    fn serialize_u64(self, v: u64) -> R {
        self.note(v <= MAX_SAFE_INTEGER);
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> R {
        self.note(v <= u128::from(MAX_SAFE_INTEGER));
        Ok(())
    }
    fn serialize_f32(self, _: f32) -> R {
        Err(FloatFound)
    }
    fn serialize_f64(self, _: f64) -> R {
        Err(FloatFound)
    }
    fn serialize_some<T: ?Sized + Serialize>(self, v: &T) -> R {
        v.serialize(self)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, v: &T) -> R {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        v: &T,
    ) -> R {
        v.serialize(self)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self, FloatFound> {
        Ok(self)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self, FloatFound> {
        Ok(self)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self, FloatFound> {
        Ok(self)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self, FloatFound> {
        Ok(self)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self, FloatFound> {
        Ok(self)
    }
    fn serialize_struct(self, name: &'static str, _: usize) -> Result<Self, FloatFound> {
        // serde_json's `arbitrary_precision` numbers and raw values arrive as a struct
        // holding text: only the written JSON tells what number it is.
        if name.starts_with("$serde_json::private::") {
            self.unsure.set(true);
        }
        Ok(self)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self, FloatFound> {
        Ok(self)
    }
}

macro_rules! compound {
    ($($tr:ident :: $m:ident),* $(,)?) => {$(
        impl ser::$tr for Walker<'_> {
            type Ok = ();
            type Error = FloatFound;
            fn $m<T: ?Sized + Serialize>(&mut self, v: &T) -> R {
                v.serialize(*self)
            }
            fn end(self) -> R {
                Ok(())
            }
        }
    )*};
}

compound!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
);

impl ser::SerializeMap for Walker<'_> {
    type Ok = ();
    type Error = FloatFound;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, k: &T) -> R {
        k.serialize(*self)
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, v: &T) -> R {
        v.serialize(*self)
    }
    fn end(self) -> R {
        Ok(())
    }
}

macro_rules! fields {
    ($($tr:ident),*) => {$(
        impl ser::$tr for Walker<'_> {
            type Ok = ();
            type Error = FloatFound;
            fn serialize_field<T: ?Sized + Serialize>(&mut self, _: &'static str, v: &T) -> R {
                v.serialize(*self)
            }
            fn end(self) -> R {
                Ok(())
            }
        }
    )*};
}

fields!(SerializeStruct, SerializeStructVariant);
