//! One dispatch from a [`DType`](murr_format::DType) to code generic over its Arrow type.

/// Runs code generic over the Arrow type of a dtype, arrow-rs style (`downcast_primitive!`):
/// for every fixed-width numeric or temporal dtype, `$prim` with `$t` a type alias of its
/// `arrow_array::types` type (whose `Native` is the row's value type; a timestamp's zone is in
/// the dtype, not in `$t`: build arrays with `with_data_type(dtype.to_arrow())`); `$utf8`,
/// `$binary`, `$bool` and `$list` for the other stored types; `$other` (with the dtype bound to
/// `$o`) for a dtype this build's segments cannot hold yet.
///
/// Every per-type piece of code (encoding, gathering, JSON) goes through this macro, so a new
/// physical type is one more arm here.
///
/// ```
/// use murr_format::DType;
/// use murr_segment::downcast_dtype;
/// fn width(dtype: DType) -> usize {
///     downcast_dtype!(dtype, |T| std::mem::size_of::<<T as arrow_array::ArrowPrimitiveType>::Native>(),
///         utf8 => 0, binary => 0, bool => 1, list => 0, other(_d) => 0)
/// }
/// assert_eq!(width(DType::Float64), 8);
/// ```
#[macro_export]
macro_rules! downcast_dtype {
    ($dtype:expr, |$t:ident| $prim:expr, utf8 => $utf8:expr, binary => $binary:expr, bool => $bool:expr, list => $list:expr, other($o:ident) => $other:expr $(,)?) => {{
        use $crate::__private::DType as __D;
        use $crate::__private::TimeUnit as __U;
        use $crate::__private::types as __T;
        match $dtype {
            __D::Int8 => {
                type $t = __T::Int8Type;
                $prim
            }
            __D::Int16 => {
                type $t = __T::Int16Type;
                $prim
            }
            __D::Int32 => {
                type $t = __T::Int32Type;
                $prim
            }
            __D::Int64 => {
                type $t = __T::Int64Type;
                $prim
            }
            __D::UInt8 => {
                type $t = __T::UInt8Type;
                $prim
            }
            __D::UInt16 => {
                type $t = __T::UInt16Type;
                $prim
            }
            __D::UInt32 => {
                type $t = __T::UInt32Type;
                $prim
            }
            __D::UInt64 => {
                type $t = __T::UInt64Type;
                $prim
            }
            __D::Float32 => {
                type $t = __T::Float32Type;
                $prim
            }
            __D::Float64 => {
                type $t = __T::Float64Type;
                $prim
            }
            __D::Float16 => {
                type $t = __T::Float16Type;
                $prim
            }
            __D::Date32 => {
                type $t = __T::Date32Type;
                $prim
            }
            __D::Timestamp(__U::Second, _) => {
                type $t = __T::TimestampSecondType;
                $prim
            }
            __D::Timestamp(__U::Millisecond, _) => {
                type $t = __T::TimestampMillisecondType;
                $prim
            }
            __D::Timestamp(__U::Microsecond, _) => {
                type $t = __T::TimestampMicrosecondType;
                $prim
            }
            __D::Timestamp(__U::Nanosecond, _) => {
                type $t = __T::TimestampNanosecondType;
                $prim
            }
            __D::Utf8 => $utf8,
            __D::Binary => $binary,
            __D::Bool => $bool,
            __D::List(_) | __D::FixedSizeList(..) => $list,
            #[allow(unreachable_patterns, reason = "DType is non_exhaustive")]
            $o => $other,
        }
    }};
}
