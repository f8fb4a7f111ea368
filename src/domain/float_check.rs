//! A serializer that only inspects: it refuses any floating-point number (finite or not)
//! before a document is canonicalised. serde_json silently turns NaN and infinity into
//! `null` inside arrays and maps, so the check must happen on the Rust value itself.

use std::fmt;

use serde::ser::{self, Serialize};

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

/// Walks `value`, failing on the first `f32`/`f64`.
pub fn refuse_floats<T: Serialize>(value: &T) -> Result<(), FloatFound> {
    value.serialize(Walker)
}

struct Walker;

type R = Result<(), FloatFound>;

macro_rules! accept {
    ($($f:ident($($t:ty),*)),* $(,)?) => {$(
        fn $f(self, $(_: $t),*) -> R { Ok(()) }
    )*};
}

impl ser::Serializer for Walker {
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
        serialize_i64(i64),
        serialize_i128(i128),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_u128(u128),
        serialize_char(char),
        serialize_str(&str),
        serialize_bytes(&[u8]),
        serialize_none(),
        serialize_unit(),
        serialize_unit_struct(&'static str),
        serialize_unit_variant(&'static str, u32, &'static str),
    );

    fn serialize_f32(self, _: f32) -> R {
        Err(FloatFound)
    }
    fn serialize_f64(self, _: f64) -> R {
        Err(FloatFound)
    }
    fn serialize_some<T: ?Sized + Serialize>(self, v: &T) -> R {
        v.serialize(Walker)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, v: &T) -> R {
        v.serialize(Walker)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        v: &T,
    ) -> R {
        v.serialize(Walker)
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
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, FloatFound> {
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
        impl ser::$tr for Walker {
            type Ok = ();
            type Error = FloatFound;
            fn $m<T: ?Sized + Serialize>(&mut self, v: &T) -> R {
                v.serialize(Walker)
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

impl ser::SerializeMap for Walker {
    type Ok = ();
    type Error = FloatFound;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, k: &T) -> R {
        k.serialize(Walker)
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, v: &T) -> R {
        v.serialize(Walker)
    }
    fn end(self) -> R {
        Ok(())
    }
}

macro_rules! fields {
    ($($tr:ident),*) => {$(
        impl ser::$tr for Walker {
            type Ok = ();
            type Error = FloatFound;
            fn serialize_field<T: ?Sized + Serialize>(&mut self, _: &'static str, v: &T) -> R {
                v.serialize(Walker)
            }
            fn end(self) -> R {
                Ok(())
            }
        }
    )*};
}

fields!(SerializeStruct, SerializeStructVariant);
