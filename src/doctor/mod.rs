//! `doctor`'s subsystem: the report (findings, rendered as text and JSON).

pub mod report;
