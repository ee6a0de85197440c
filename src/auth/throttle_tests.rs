//! The throttle in memory: reservations, releases and the windows.

use super::*;

fn settings(window: Duration) -> ThrottleSettings {
    ThrottleSettings {
        window,
        max_failures_per_email: 5,
        max_failures_per_client: 20,
        registrations_per_hour: 2,
    }
}

#[tokio::test]
async fn the_sixth_attempt_for_an_email_is_refused_until_the_window_ends() {
    let throttle = LoginThrottle::in_memory(settings(Duration::from_millis(300)));
    let a = Email::parse("A@x.io").unwrap();
    let b = Email::parse("b@x.io").unwrap();
    let (one, two): (IpAddr, IpAddr) = ("1.1.1.1".parse().unwrap(), "2.2.2.2".parse().unwrap());
    for _ in 0..5 {
        let _failure = throttle.reserve_login(Some(&a), one).await.unwrap();
    }
    let same = Email::parse("a@X.IO").unwrap();
    assert!(
        throttle.reserve_login(Some(&same), two).await.is_err(),
        "case does not matter"
    );
    assert!(throttle.reserve_login(Some(&b), one).await.is_ok());
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(throttle.reserve_login(Some(&a), one).await.is_ok());
}

#[tokio::test]
async fn a_released_login_does_not_count_and_malformed_emails_count_for_the_client() {
    let throttle = LoginThrottle::in_memory(settings(Duration::from_secs(60)));
    let a = Email::parse("a@x.io").unwrap();
    let client: IpAddr = "1.1.1.1".parse().unwrap();
    for _ in 0..50 {
        let success = throttle.reserve_login(Some(&a), client).await.unwrap();
        throttle.release(success).await;
    }
    for _ in 0..20 {
        let _failure = throttle.reserve_login(None, client).await.unwrap();
    }
    assert!(throttle.reserve_login(Some(&a), client).await.is_err());
}

#[tokio::test]
async fn ipv6_clients_count_per_64_and_registrations_per_hour() {
    let throttle = LoginThrottle::in_memory(settings(Duration::from_secs(60)));
    for n in 0..20 {
        let ip: IpAddr = format!("2001:db8:1:2::{n:x}").parse().unwrap();
        let _failure = throttle.reserve_login(None, ip).await.unwrap();
    }
    let same_64: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
    let other_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
    assert!(throttle.reserve_login(None, same_64).await.is_err());
    assert!(throttle.reserve_login(None, other_64).await.is_ok());
    for _ in 0..2 {
        throttle.reserve_registration(other_64).await.unwrap();
    }
    assert!(throttle.reserve_registration(other_64).await.is_err());
    assert!(throttle.reserve_registration(same_64).await.is_ok());
}
