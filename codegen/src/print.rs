//! Prints descriptors as .proto source (being written).
