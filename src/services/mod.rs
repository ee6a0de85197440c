//! Use cases that span more than one store call or component.

pub mod accounts;
