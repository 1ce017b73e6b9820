//! A bare warp server that answers every request with a fixed JSON body: the baseline the
//! load script (`bench/load.sh`) compares the simulator against, in the same run.
//!
//! Run with `cargo run --release -p fhirdrill-simulator --example bare_warp -- PORT BODY_FILE`.

use warp::Filter;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).unwrap_or(8099);
    let body = args
        .next()
        .and_then(|path| std::fs::read(path).ok())
        .unwrap_or_else(|| b"{}".to_vec());
    let route = warp::any().map(move || {
        http::Response::builder()
            .header("content-type", "application/fhir+json")
            .body(body.clone())
            .unwrap_or_default()
    });
    println!("bare warp listening on http://127.0.0.1:{port}");
    warp::serve(route).run(([127, 0, 0, 1], port)).await;
}
