//! A small typed expression language over Arrow record batches, for
//! filters (`Quantity > 0`) and derived columns (`Quantity * UnitPrice`).
//! (Being written.)
