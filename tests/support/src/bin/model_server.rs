//! `booflow-model-server [PORT]`: the scripted OpenAI-compatible model server as a process,
//! to try booflow (or qwen-code through booflow) on a machine without a model. Prints its
//! base URL and serves until killed. Its answers follow the directives of
//! `booflow_testkit::model_server` (`[[reply:…]]`, `[[delay:…]]`, …).

fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let server = booflow_testkit::model_server::ModelServer::start_background_on(port);
    println!("{}", server.base_url);
    loop {
        std::thread::park();
    }
}
