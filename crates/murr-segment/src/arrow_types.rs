//! The mapping between murr's types and Arrow's.

use arrow_schema::DataType;
use murr_format::DType;

/// The Arrow type murr stores and returns for a column type.
pub fn arrow_type(dtype: DType) -> DataType {
    match dtype {
        DType::Utf8 => DataType::Utf8,
        DType::Bool => DataType::Boolean,
        DType::Int8 => DataType::Int8,
        DType::Int16 => DataType::Int16,
        DType::Int32 => DataType::Int32,
        DType::Int64 => DataType::Int64,
        DType::UInt8 => DataType::UInt8,
        DType::UInt16 => DataType::UInt16,
        DType::UInt32 => DataType::UInt32,
        DType::UInt64 => DataType::UInt64,
        DType::Float32 => DataType::Float32,
        DType::Float64 => DataType::Float64,
        _ => unreachable!("every dtype has an Arrow type"),
    }
}
