//! Products written as export files: CSV (the import's header and cells) or JSON Lines (the
//! import's keys). What is written here parses back, through the import, to the same products.

use crate::domain::import::{COLUMNS, FileFormat};
use crate::domain::product::Product;

/// Appends products to an export file's bytes.
pub struct Encoder {
    format: FileFormat,
    csv: csv::Writer<Vec<u8>>,
    json: Vec<u8>,
}

impl Encoder {
    /// An encoder; a CSV file starts with its header row.
    pub fn new(format: FileFormat) -> Self {
        let mut encoder = Encoder {
            format,
            csv: csv::WriterBuilder::new().from_writer(Vec::new()),
            json: Vec::new(),
        };
        if format == FileFormat::Csv {
            // Writing into memory cannot fail.
            let _ = encoder.csv.write_record(COLUMNS);
        }
        encoder
    }

    /// Appends one product.
    pub fn push(&mut self, product: &Product) {
        let draft = &product.draft;
        let sku = draft.sku.as_ref().map(|s| s.as_str());
        let description = draft.description.as_ref().map(|d| d.as_str());
        match self.format {
            FileFormat::Csv => {
                let price = draft.price.to_string();
                let stock = draft.stock.units().to_string();
                let _ = self.csv.write_record([
                    sku.unwrap_or(""),
                    draft.name.as_str(),
                    description.unwrap_or(""),
                    price.as_str(),
                    stock.as_str(),
                ]);
            }
            FileFormat::Jsonl => {
                let line = serde_json::json!({
                    "sku": sku,
                    "name": draft.name.as_str(),
                    "description": description,
                    "price": draft.price.to_string(),
                    "stock": draft.stock.units(),
                });
                self.json.extend_from_slice(line.to_string().as_bytes());
                self.json.push(b'\n');
            }
        }
    }

    /// How many encoded bytes wait to be taken.
    pub fn pending(&mut self) -> usize {
        let _ = self.csv.flush();
        self.csv.get_ref().len() + self.json.len()
    }

    /// Takes the bytes encoded so far.
    pub fn take(&mut self) -> Vec<u8> {
        let _ = self.csv.flush();
        match self.format {
            FileFormat::Csv => {
                let writer = std::mem::replace(&mut self.csv, csv::Writer::from_writer(Vec::new()));
                writer.into_inner().unwrap_or_default()
            }
            FileFormat::Jsonl => std::mem::take(&mut self.json),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::domain::import::ImportMode;
    use crate::domain::money::Price;
    use crate::domain::product::{Description, ProductDraft, ProductName, Sku, Stock};
    use crate::transfer::rows::{Parsed, read_rows};

    fn draft() -> impl Strategy<Value = Option<ProductDraft>> {
        (
            "[a-zA-Z0-9 ,;\"'\t\n\r\u{e9}\u{f1}\u{65e5}\u{672c}\u{1F680}\u{200B}]{1,40}",
            proptest::option::of("[a-z ,;\"'\t\n\r\u{e9}\u{65e5}\u{1F680}]{1,60}"),
            "[A-Za-z0-9._-]{1,20}",
            0i64..=100_000_000_000,
            0i64..=2_147_483_647,
        )
            .prop_map(|(name, description, sku, cents, stock)| {
                Some(ProductDraft {
                    name: ProductName::parse(&name).ok()?,
                    description: description.map(|d| Description::parse(&d)).transpose().ok()?,
                    sku: Some(Sku::parse(&sku).ok()?),
                    price: Price::from_cents(cents).ok()?,
                    stock: Stock::new(stock).ok()?,
                })
            })
    }

    fn round_trip(format: FileFormat, drafts: &[ProductDraft]) -> Vec<ProductDraft> {
        let mut encoder = Encoder::new(format);
        for (i, draft) in drafts.iter().enumerate() {
            encoder.push(&Product {
                id: i as i64 + 1,
                draft: draft.clone(),
                version: 1,
                created_at: chrono::Utc::now(),
                updated_at: chrono::Utc::now(),
            });
        }
        let bytes = encoder.take();
        let mut back = Vec::new();
        read_rows(&bytes[..], format, ImportMode::Upsert, 0, 7, |batch| {
            for parsed in batch {
                match parsed {
                    Parsed::Valid(row) => back.push(row.draft),
                    Parsed::Invalid(errors) => panic!("{errors:?} in {}", String::from_utf8_lossy(&bytes)),
                }
            }
            true
        })
        .unwrap();
        back
    }

    proptest! {
        #[test]
        fn what_the_exporter_writes_parses_back_to_the_same_products(
            drafts in proptest::collection::vec(draft(), 0..20)
        ) {
            let drafts: Vec<ProductDraft> = drafts.into_iter().flatten().collect();
            prop_assert_eq!(&round_trip(FileFormat::Csv, &drafts), &drafts);
            prop_assert_eq!(&round_trip(FileFormat::Jsonl, &drafts), &drafts);
        }
    }
}
