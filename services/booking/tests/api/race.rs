use std::collections::HashMap;

use testkit::TestSystem;

use crate::showtime;

/// 300 buyers race for the 60 seats of one room with random, overlapping sets of 1-4 seats.
/// In the distributed mode the requests alternate between two booking processes' worth of
/// replicas on one database.
#[tokio::test]
async fn three_hundred_buyers_never_get_one_seat_twice() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let show = showtime(&sys, &admin, 6, 10, 24).await;
    let replicas = [sys.service_url("booking"), sys.start_replica("booking").await];
    let mut buyers = Vec::new();
    for _ in 0..30 {
        buyers.push(sys.user_token().await.0);
    }
    let mut seed: u64 = 7;
    let mut next = move || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) as usize
    };
    let mut requests = Vec::new();
    for i in 0..300 {
        let n = 1 + next() % 4;
        let seats: Vec<String> =
            (0..n).map(|_| format!("{}{}", char::from(b'A' + (next() % 6) as u8), 1 + next() % 10)).collect();
        let mut unique = seats.clone();
        unique.sort();
        unique.dedup();
        let url = format!("{}/api/v1/bookings", replicas[i % 2]);
        let body = serde_json::json!({"showtime_id": show, "seats": unique});
        requests.push((url, body, buyers[i % buyers.len()].clone()));
    }
    let answers = futures_util::future::join_all(
        requests.iter().map(|(url, body, token)| sys.send("POST", url, Some(body.clone()), Some(token))),
    )
    .await;
    let mut sold: HashMap<String, usize> = HashMap::new();
    for a in &answers {
        match a.status {
            201 => {
                for seat in a.body["seats"].as_array().expect("seats") {
                    *sold.entry(seat.as_str().expect("seat").to_owned()).or_default() += 1;
                }
            }
            409 => assert!(a.body["unavailable"].as_array().is_some_and(|u| !u.is_empty()), "{}", a.body),
            other => panic!("a loser must get 409, never {other}: {}", a.body),
        }
    }
    assert!(sold.values().all(|n| *n == 1), "a seat went twice: {sold:?}");
    let map = sys.get(&format!("/api/v1/showtimes/{show}/seats"), None).await;
    let free = map.body["available"].as_u64().expect("available") as usize;
    assert_eq!(sold.len() + free, 60, "seats taken + seats free = capacity");
    let winners = answers.iter().filter(|a| a.status == 201).count();
    assert!(winners > 0 && winners < 300);
}
