//! netscript host (placeholder).
