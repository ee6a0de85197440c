//! The cache's own rules, without HTTP: single-flight, and a write racing a load.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, oneshot};

use super::channel::{decode, encode, merge};
use super::*;

fn local() -> Cache {
    let settings = CacheSettings {
        mode: CacheMode::Local,
        ttl: Duration::from_secs(60),
        max_bytes: 1 << 20,
    };
    Cache::new(&settings, None).unwrap()
}

fn answer(text: &str) -> Answer {
    Answer {
        body: Bytes::copy_from_slice(text.as_bytes()),
        etag: None,
        link: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_misses_for_one_key_loads_once() {
    let cache = local();
    let loads = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..50)
        .map(|_| {
            let (cache, loads) = (cache.clone(), loads.clone());
            tokio::spawn(async move {
                cache
                    .product(7, || async {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        Ok::<_, ()>(answer("seven"))
                    })
                    .await
                    .unwrap()
            })
        })
        .collect();
    for reader in readers {
        let (got, _) = reader.await.unwrap();
        assert_eq!(&got.body[..], b"seven");
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1, "one database read for the burst");
}

/// A load that began before a write must not be joined by a read that starts after the write,
/// nor stored where such a read would find it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_after_a_write_never_sees_a_load_that_began_before_it() {
    for listing in [false, true] {
        let cache = local();
        let started = Arc::new(Notify::new());
        let (release, released) = oneshot::channel::<()>();
        let released = Arc::new(tokio::sync::Mutex::new(Some(released)));
        let read = |cache: &Cache, text: &'static str| {
            let (cache, started, released) = (cache.clone(), started.clone(), released.clone());
            async move {
                let load = || {
                    let (started, released) = (started.clone(), released.clone());
                    async move {
                        if text == "old" {
                            started.notify_one();
                            let gate = released.lock().await.take();
                            if let Some(gate) = gate {
                                let _ = gate.await;
                            }
                        }
                        Ok::<_, ()>(answer(text))
                    }
                };
                let (got, lookup) = if listing {
                    cache.listing("page=1".to_owned(), load).await.unwrap()
                } else {
                    cache.product(1, load).await.unwrap()
                };
                (String::from_utf8(got.body.to_vec()).unwrap(), lookup.unwrap())
            }
        };
        // The slow read: it reads the old row, then waits before it can store it.
        let before = tokio::spawn(read(&cache, "old"));
        started.notified().await;
        cache.invalidate_products(ProductChange::Products(vec![1])).await;
        // A read that starts after the write's invalidation loads for itself.
        let after = tokio::time::timeout(Duration::from_secs(5), read(&cache, "new"))
            .await
            .expect("a read after the write does not wait for the load before it");
        assert_eq!(after, ("new".to_owned(), Lookup::Miss), "listing: {listing}");
        let _ = release.send(());
        let (text, _) = before.await.unwrap();
        assert_eq!(text, "old", "the read that began first answers what it read");
        // And the old answer was not stored over the new one.
        assert_eq!(read(&cache, "other").await, ("new".to_owned(), Lookup::Hit));
        let inner = cache.inner.as_ref().unwrap();
        inner.products.run_pending_tasks().await;
        inner.listings.run_pending_tasks().await;
        let stored = inner.products.entry_count() + inner.listings.entry_count();
        assert_eq!(stored, 1, "the raced load stored nothing (listing: {listing})");
    }
}

#[tokio::test]
async fn a_failed_load_is_not_stored() {
    let cache = local();
    let failed = cache
        .product(3, || async { Err::<Answer, _>("no such product") })
        .await;
    assert_eq!(failed.unwrap_err(), "no such product");
    let (got, lookup) = cache
        .product(3, || async { Ok::<_, &str>(answer("three")) })
        .await
        .unwrap();
    assert_eq!((&got.body[..], lookup), (&b"three"[..], Some(Lookup::Miss)));
}

#[tokio::test]
async fn an_off_cache_always_loads_and_says_nothing() {
    let cache = Cache::off();
    for _ in 0..2 {
        let (_, lookup) = cache
            .product(1, || async { Ok::<_, ()>(answer("x")) })
            .await
            .unwrap();
        assert_eq!(lookup, None);
    }
}

#[test]
fn messages_of_other_instances_decode_and_own_ones_are_ignored() {
    assert_eq!(decode("me", "me 1,2"), None);
    assert_eq!(decode("you", "me 1,2"), Some(ProductChange::Products(vec![1, 2])));
    assert_eq!(decode("you", "me *"), Some(ProductChange::All));
    assert_eq!(decode("you", "me "), Some(ProductChange::Products(Vec::new())));
    assert_eq!(decode("you", "garbage"), Some(ProductChange::All));
    assert_eq!(decode("you", "me 1,x"), Some(ProductChange::All));
}

#[test]
fn changes_waiting_for_one_publish_merge_into_one_message_naming_each_product_once() {
    use ProductChange::{All, Products};
    let merged = [Products(vec![3, 1]), Products(vec![]), Products(vec![1, 2])]
        .into_iter()
        .fold(None, |pending, change| Some(merge(pending, change)));
    assert_eq!(merged, Some(Products(vec![1, 2, 3])));
    assert_eq!(
        decode("you", &encode("me", &Products(vec![1, 2, 3]))),
        Some(Products(vec![1, 2, 3]))
    );
    assert_eq!(merge(Some(Products(vec![1])), All), All);
    assert_eq!(merge(Some(All), Products(vec![1])), All);
    let many = merge(Some(Products((0..1_000).collect())), Products(vec![1_000]));
    assert_eq!(many, All, "past a thousand ids a message says everything");
    assert_eq!(
        merge(Some(Products((0..1_000).collect())), Products(vec![5])),
        Products((0..1_000).collect())
    );
}
