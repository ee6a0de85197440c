//! Bulk import and export of the catalogue, run as jobs: file formats (rows parsed by the
//! API's own product parser in `http::dto`), the job handlers, and the upload and download
//! paths the HTTP layer and the CLI share.

pub mod encode;
pub mod export;
pub mod import;
pub mod records;
pub mod rows;
pub mod source;

use crate::jobs::runner::Registry;

/// The handlers of the import and export kinds.
pub fn registry() -> Registry {
    Registry::default()
        .with(import::ImportHandler)
        .with(export::ExportHandler)
}
