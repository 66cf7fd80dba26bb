//! Integration tests of the listings service's parts that stand alone.

mod vault;
