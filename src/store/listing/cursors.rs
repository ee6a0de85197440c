//! Keyset cursors: the sort key's value of a row, where the next page starts.

#[allow(unused_imports)]
use super::*;

pub(super) fn key_of(sort: Sort, product: &Product, score: Option<f64>) -> KeyValue {
    match sort.key {
        SortKey::Id => KeyValue::Int(product.id),
        SortKey::Name => KeyValue::Text(product.draft.name.as_str().to_owned()),
        SortKey::Price => KeyValue::Int(product.draft.price.cents()),
        SortKey::Stock => KeyValue::Int(product.draft.stock.units()),
        SortKey::CreatedAt => KeyValue::Int(product.created_at.timestamp_micros()),
        SortKey::UpdatedAt => KeyValue::Int(product.updated_at.timestamp_micros()),
        SortKey::Relevance => KeyValue::Score(score.unwrap_or_default()),
    }
}
